package maintainer

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/bootstrap"
	"github.com/tidemark/tidemark/heartbeatpb"
)

var (
	// ErrInvalid wraps every error about malformed input: config, envelopes, bodies.
	ErrInvalid = errors.New("maintainer: invalid input")
	// ErrStale wraps errors about messages from another epoch or from a node not in the cluster.
	ErrStale = errors.New("maintainer: stale message")
	// ErrUnknownSender wraps errors about envelopes whose claimed sender is not a registered
	// node (NodeJoined). It wraps ErrStale, so callers that only count stale messages still do.
	ErrUnknownSender = fmt.Errorf("%w: sender is not a registered node", ErrStale)
)

// Config configures one maintainer. Zero durations and limits take the defaults.
type Config struct {
	ClusterID, Changefeed, SelfNode string
	Epoch                           uint64
	ChangefeedConfig                *heartbeatpb.ChangefeedConfig // Id must equal Changefeed
	PersistedCheckpoint             uint64
	BootstrapTimeout                time.Duration // silent nodes are evicted after it; default 10s
	ResendInterval                  time.Duration // default 1s
	MaxOperatorsPerNode             int           // in-flight limit per node; default 5000
	MaxOperators                    int           // in-flight limit overall; default 10000
	// ScheduleBatch bounds how many absent spans one scheduler round places; default 10000.
	ScheduleBatch int
	// StuckOperatorAfter: operators older than this are logged as stuck; default 1m.
	StuckOperatorAfter time.Duration
	// PhaseTimeout: an operator phase with neither progress nor a refusal for this long is
	// rolled back (operator.Aborter); default 30s.
	PhaseTimeout time.Duration
	// LoadReports: consecutive load reports above split_load_threshold (below
	// merge_load_threshold) before a span is split (merged); default 3.
	LoadReports int
	// SplitMergeCooldown: after a split or merge of a table, no other one for it this long;
	// default 10s. With LoadReports it keeps split and merge from flapping.
	SplitMergeCooldown time.Duration
	// SplitMergeBatch bounds the splits and merges (with their moves) started per round;
	// default 64.
	SplitMergeBatch int
	// MakeBeforeBreak: every Move (balance, drain, admin, split and merge placement) prepares
	// its destination before it stops the origin (operator/prepare.go); off by default, also
	// on when the changefeed config says make_before_break.
	MakeBeforeBreak bool
	Logger          *zap.Logger
}

const (
	defaultBootstrapTimeout = 10 * time.Second
	defaultResendInterval   = time.Second
	// Half the overall limit: after a failover on 3 nodes the two survivors re-create the dead
	// node's spans at in-flight over round trip, and at 1000 a node they used a fifth of the
	// overall budget (TestDefaultLimitsFillTwoSurvivors). The overall limit still bounds the
	// total; ScheduleBatch bounds what one round starts.
	defaultMaxPerNode      = 5000
	defaultMaxOperators    = 10000
	defaultScheduleBatch   = 10000
	defaultStuckAfter      = time.Minute
	defaultPhaseTimeout    = 30 * time.Second
	defaultLoadReports     = 3
	defaultSplitMergeCool  = 10 * time.Second
	defaultSplitMergeBatch = 64
)

// validate fills defaults and reports the first bad field.
func (c *Config) validate() error {
	switch {
	case c.ClusterID == "":
		return fmt.Errorf("%w: config: empty ClusterID", ErrInvalid)
	case c.Changefeed == "":
		return fmt.Errorf("%w: config: empty Changefeed", ErrInvalid)
	case c.SelfNode == "":
		return fmt.Errorf("%w: config: empty SelfNode", ErrInvalid)
	case c.Epoch == 0:
		return fmt.Errorf("%w: config: Epoch must be positive", ErrInvalid)
	case c.ChangefeedConfig == nil:
		return fmt.Errorf("%w: config: nil ChangefeedConfig", ErrInvalid)
	case c.ChangefeedConfig.Id != c.Changefeed:
		return fmt.Errorf("%w: config: ChangefeedConfig.Id %q differs from Changefeed %q",
			ErrInvalid, c.ChangefeedConfig.Id, c.Changefeed)
	case c.BootstrapTimeout < 0, c.ResendInterval < 0, c.StuckOperatorAfter < 0, c.PhaseTimeout < 0:
		return fmt.Errorf("%w: config: negative duration", ErrInvalid)
	case c.MaxOperatorsPerNode < 0, c.MaxOperators < 0, c.ScheduleBatch < 0, c.LoadReports < 0,
		c.SplitMergeBatch < 0, c.SplitMergeCooldown < 0:
		return fmt.Errorf("%w: config: negative limit", ErrInvalid)
	}
	if err := bootstrap.ValidateConfig(c.ChangefeedConfig); err != nil {
		return fmt.Errorf("%w: config: %v", ErrInvalid, err)
	}
	setDefault(&c.BootstrapTimeout, defaultBootstrapTimeout)
	setDefault(&c.ResendInterval, defaultResendInterval)
	setDefault(&c.StuckOperatorAfter, defaultStuckAfter)
	setDefault(&c.PhaseTimeout, defaultPhaseTimeout)
	setDefault(&c.MaxOperatorsPerNode, defaultMaxPerNode)
	setDefault(&c.MaxOperators, defaultMaxOperators)
	setDefault(&c.ScheduleBatch, defaultScheduleBatch)
	setDefault(&c.LoadReports, defaultLoadReports)
	setDefault(&c.SplitMergeCooldown, defaultSplitMergeCool)
	setDefault(&c.SplitMergeBatch, defaultSplitMergeBatch)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
