package sim

import (
	"fmt"
	"math/rand"
	"sort"
	"time"

	"github.com/tidemark/tidemark/dispatchermanager"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/maintainer"
	"github.com/tidemark/tidemark/ts"
)

const (
	clusterID  = "sim"
	changefeed = "cf"
)

// t0 is the simulated wall clock at the start of every run.
var t0 = time.UnixMilli(1_700_000_000_000)

// Config shapes one simulated run. Zero fields take the defaults.
type Config struct {
	Seed   int64
	Nodes  int  // nodes at the start; default 3
	Tables int  // default 6
	Redo   bool // a second, redo mode for every span
	// SplitMerge turns the split and merge schedulers on: odd tables carry load 30, which the
	// split threshold (24) cuts into 4 cold pieces (7 < 8) that merge back into pairs (14).
	SplitMerge bool
	// MakeBeforeBreak: the maintainers prepare a Move's destination before stopping its origin.
	MakeBeforeBreak bool
	// Faults draws random fault events from the seed during FaultTime.
	Faults    bool
	FaultTime time.Duration // default 40s
	// QuietTime bounds convergence (I6) once faults stop; default 60s.
	QuietTime time.Duration
	Tick      time.Duration // default 100ms
	// Network of the fault phase; the quiet phase keeps only the delay.
	DropRate, DupRate float64       // defaults 0.1, 0.05 with Faults
	MaxDelay          time.Duration // default 250ms
	// SessionTTL: a lost lease is noticed by etcd (and the others) after it; default 2s.
	SessionTTL time.Duration
	// BootstrapTimeout of every maintainer: nodes still silent after it are evicted (their
	// registration deleted, so they stop and rejoin empty); default 10s as in production, above
	// the longest random partition (testdata/silent_node.txt partitions longer).
	BootstrapTimeout time.Duration
	// TraceLen is how many recent events a violation report shows; default 400.
	TraceLen   int
	ChunkBytes int // of every dispatcher manager; default 150 (two statuses), so answers split
}

func (c *Config) fill() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Nodes, 3)
	def(&c.Tables, 6)
	def(&c.TraceLen, 400)
	def(&c.ChunkBytes, 150)
	defDur(&c.FaultTime, 40*time.Second)
	defDur(&c.QuietTime, 60*time.Second)
	defDur(&c.Tick, 100*time.Millisecond)
	defDur(&c.MaxDelay, 250*time.Millisecond)
	defDur(&c.SessionTTL, 2*time.Second)
	defDur(&c.BootstrapTimeout, 10*time.Second)
	if c.Faults && c.DropRate == 0 && c.DupRate == 0 {
		c.DropRate, c.DupRate = 0.1, 0.05
	}
}

// nodeState is a node process as the cluster sees it.
type nodeState int

const (
	nodeUp     nodeState = iota
	nodeFrozen           // lease lost: the lease guard stops it acting until its session ends
	nodeDown             // crashed; restarts later as a new incarnation
)

var nodeStateNames = [...]string{"up", "frozen", "down"}

func (s nodeState) String() string { return nodeStateNames[s] }

type node struct {
	id          string
	state       nodeState
	incarnation uint64
	dm          *dispatchermanager.Manager
	sink        *sink
	toldEpoch   uint64 // highest epoch etcd (leader watch or read) told this incarnation
	toldLeader  string // the node etcd named with toldEpoch
	partitioned bool
	working     []heartbeatpb.DispatcherStatus // working dispatchers after the last Step/Tick
}

// maintState is a maintainer process's role.
type maintState int

const (
	maintRunning maintState = iota // the current maintainer
	maintPaused                    // lost its lease while paused; may wake up as a zombie
	maintZombie                    // woke up after a newer one took over and keeps sending
	maintDead
)

type maint struct {
	node  string
	epoch uint64
	m     *maintainer.Maintainer
	state maintState
	known map[string]bool // registered nodes it was told about
}

// Cluster is one simulated cluster. Not safe for concurrent use.
type Cluster struct {
	cfg      Config
	rng      *rand.Rand
	now      time.Time
	startTs  uint64
	tables   []heartbeatpb.TableConfig
	nodes    map[string]*node
	order    []string // node IDs, sorted
	nextInc  uint64
	registry map[string]bool // leased nodes, as etcd's node watch reports them

	maints    []*maint
	leader    *maint
	epoch     uint64
	electAt   time.Time // when the next election happens, zero when one is not pending
	leaderAt  time.Time // when the current leader was elected
	persisted uint64    // the changefeed checkpoint in etcd

	net         network
	pending     []timed // scheduled actions: watch deliveries, lease expiries, restarts
	track       *tracker
	src         *source // the modelled source database the dispatchers replicate
	trace       *trace
	faults      bool // fault phase on
	kill        *killSpec
	chunkFaults []*chunkFault // scripted faults on answers' pieces (chunkfaults.go)
	interrupted *intent
	fail        error // a violation found inside a scheduled action, returned by the next step
	// forged: envelopes the Byzantine sender made (byzantine.go), exempt from the checks of
	// real traffic (a forged malformed body is refused as malformed, as it must be).
	forged map[*heartbeatpb.Envelope]bool
	// forgedEpochs: epochs it claimed; the election skips them, because an attacker who guesses
	// the next epoch and its winner is indistinguishable from that winner without TLS.
	forgedEpochs map[uint64]bool
	counter      map[string]int // what happened, for the report

	// The cluster's concerns, each a view over this state with its own methods (views.go).
	forge  forger   // the Byzantine sender (byzantine.go)
	etcd   etcdView // etcd as the nodes and maintainers see it (etcdview.go)
	check  checker  // the invariants (invariants.go)
	wire   wire     // the network (network.go)
	script script   // scripted kills and intents (script.go)
	fault  faulter  // random and scripted faults (faults.go)
}

// timed is an action due at a time.
type timed struct {
	at  time.Time
	seq int
	do  func()
}

// New builds a cluster of cfg.Nodes nodes with no maintainer yet; the first election is due now.
func New(cfg Config) *Cluster {
	cfg.fill()
	c := &Cluster{
		cfg:      cfg,
		rng:      rand.New(rand.NewSource(cfg.Seed)),
		now:      t0,
		startTs:  ts.FromTime(t0),
		nodes:    make(map[string]*node),
		registry: make(map[string]bool),
		epoch:    10,
		trace:    newTrace(cfg.TraceLen),
		counter:  make(map[string]int),
		forged:   make(map[*heartbeatpb.Envelope]bool),

		forgedEpochs: make(map[uint64]bool),
	}
	c.track = newTracker(c.startTs)
	c.forge, c.etcd, c.check, c.wire, c.script, c.fault = forger{c}, etcdView{c}, checker{c}, wire{c}, script{c}, faulter{c}
	for i := int64(1); i <= int64(cfg.Tables); i++ {
		load := uint64(10)
		if cfg.SplitMerge && i%2 == 1 {
			load = 30
		}
		c.tables = append(c.tables, heartbeatpb.TableConfig{TableId: i, Load: load})
	}
	c.src = newSource(cfg.Seed, c.tables, c.now)
	for i := 1; i <= cfg.Nodes; i++ {
		c.addNode(fmt.Sprintf("n%d", i))
	}
	c.electAt = c.now
	return c
}

func (c *Cluster) changefeedConfig() *heartbeatpb.ChangefeedConfig {
	cfg := &heartbeatpb.ChangefeedConfig{Id: changefeed, StartTs: c.startTs, Tables: c.tables, Redo: c.cfg.Redo}
	if c.cfg.SplitMerge {
		cfg.SplitLoadThreshold, cfg.MergeLoadThreshold, cfg.SplitPieces = 24, 8, 4
	}
	return cfg
}

// addNode starts a node process with a fresh incarnation and registers it.
func (c *Cluster) addNode(id string) {
	n := c.nodes[id]
	if n == nil {
		n = &node{id: id}
		c.nodes[id] = n
		c.order = append(c.order, id)
		sort.Strings(c.order)
	}
	c.nextInc++
	n.state, n.incarnation, n.toldEpoch, n.toldLeader, n.working = nodeUp, c.nextInc, 0, "", nil
	n.sink = c.track.newSink(fmt.Sprintf("%s#%d", id, n.incarnation))
	dm, err := dispatchermanager.New(dispatchermanager.Config{
		ClusterID: clusterID, NodeID: id, Changefeed: changefeed, Incarnation: n.incarnation,
		ChunkBytes: c.cfg.ChunkBytes,
		Factory:    &checkedFactory{sink: n.sink, c: c, node: id, lives: make(map[heartbeatpb.DispatcherID]int)},
	}, c.now)
	if err != nil {
		panic(err)
	}
	n.dm = dm
	c.tracef("node %s starts, incarnation %d", id, n.incarnation)
	c.etcd.register(id)
	// The leader watch starts with the current leader.
	if c.leader != nil {
		c.etcd.tellLeader(n, c.leader.epoch, c.leader.node)
	}
}

// register puts node in the registry and tells every running maintainer.
func (c etcdView) register(id string) {
	c.registry[id] = true
	c.membership()
}

func (c etcdView) unregister(id string) {
	delete(c.registry, id)
	c.membership()
}

// membership hands the registry to every running maintainer and every node's dispatcher
// manager, as the server's node watch does.
func (c etcdView) membership() {
	var ids []string
	for _, id := range c.order {
		if c.registry[id] {
			ids = append(ids, id)
		}
	}
	for _, id := range c.order {
		if n := c.nodes[id]; n.dm != nil && n.state != nodeDown {
			n.dm.SetNodes(ids)
		}
	}
	for _, mt := range c.maints {
		if mt.state != maintRunning {
			continue
		}
		for _, id := range c.order {
			switch {
			case c.registry[id] && !mt.known[id]:
				mt.known[id] = true
				mt.m.NodeJoined(id, c.now)
			case !c.registry[id] && mt.known[id]:
				delete(mt.known, id)
				mt.m.NodeLeft(id, c.now)
			}
		}
	}
}

// at schedules do after d.
func (c *Cluster) at(d time.Duration, do func()) {
	c.pending = append(c.pending, timed{at: c.now.Add(d), seq: len(c.pending) + c.counter["timed"], do: do})
	c.counter["timed"]++
}

// runDue runs every scheduled action due by now, in time order.
func (c *Cluster) runDue() {
	for {
		best := -1
		for i, p := range c.pending {
			if !p.at.After(c.now) && (best < 0 || p.at.Before(c.pending[best].at) ||
				(p.at.Equal(c.pending[best].at) && p.seq < c.pending[best].seq)) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		p := c.pending[best]
		c.pending = append(c.pending[:best], c.pending[best+1:]...)
		p.do()
	}
}

// elect makes a random registered, up node the maintainer with the next epoch.
func (c *Cluster) elect() {
	var cands []string
	for _, id := range c.order {
		if c.registry[id] && c.nodes[id].state == nodeUp {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		c.electAt = c.now.Add(c.cfg.SessionTTL)
		return
	}
	c.electAt = time.Time{}
	c.epoch += 1 + uint64(c.rng.Intn(3))
	for c.forgedEpochs[c.epoch] {
		c.epoch++
	}
	id := cands[c.rng.Intn(len(cands))]
	live := make([]string, 0, len(c.registry))
	for _, n := range c.order {
		if c.registry[n] {
			live = append(live, n)
		}
	}
	m, err := maintainer.New(maintainer.Config{
		ClusterID: clusterID, Changefeed: changefeed, SelfNode: id, Epoch: c.epoch,
		ChangefeedConfig: c.changefeedConfig(), PersistedCheckpoint: c.persisted,
		// A silent node is evicted, never assumed dead (flushMaint, evict).
		BootstrapTimeout: c.cfg.BootstrapTimeout,
		MakeBeforeBreak:  c.cfg.MakeBeforeBreak,
	}, live, c.now)
	if err != nil {
		panic(err)
	}
	mt := &maint{node: id, epoch: c.epoch, m: m, known: make(map[string]bool)}
	for _, n := range live {
		mt.known[n] = true
	}
	c.maints = append(c.maints, mt)
	c.leader, c.leaderAt = mt, c.now
	c.counter["elections"]++
	c.tracef("election: %s maintains epoch %d (persisted checkpoint %d)", id, c.epoch, c.persisted)
	// The leader watch reaches every node after its own delay.
	for _, nid := range c.order {
		n := c.nodes[nid]
		inc, epoch := n.incarnation, c.epoch
		c.at(time.Duration(c.rng.Int63n(int64(400*time.Millisecond))), func() {
			if n.state == nodeUp && n.incarnation == inc && epoch > n.toldEpoch {
				c.etcd.tellLeader(n, epoch, id)
			}
		})
	}
}

// loseLeader ends the current maintainer's term; a new election follows after delay.
func (c *Cluster) loseLeader(state maintState, delay time.Duration) {
	if c.leader == nil {
		return
	}
	c.leader.state = state
	c.tracef("maintainer %s epoch %d stops (%v)", c.leader.node, c.leader.epoch, stateName(state))
	c.leader = nil
	if c.electAt.IsZero() {
		c.electAt = c.now.Add(delay)
	}
}

func stateName(s maintState) string {
	return [...]string{"running", "paused", "zombie", "dead"}[s]
}

// Counters returns how often each fault and notable event happened in this run.
func (c *Cluster) Counters() map[string]int {
	out := make(map[string]int, len(c.counter))
	for _, mt := range c.maints {
		for k, v := range mt.m.Status().OperatorsDone {
			out[k] += int(v)
		}
	}
	for k, v := range c.counter {
		if k != "timed" {
			out[k] = v
		}
	}
	return out
}
