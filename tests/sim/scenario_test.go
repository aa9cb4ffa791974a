package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs the named scenarios in testdata/: scripted faults, each checked against
// the invariants after every delivered message, plus what the scenario asserts. Commands:
//
//	cluster [nodes=N] [tables=N] [redo] [splitmerge]  a new cluster (seeded by seed=N, default 1)
//	random seed=N [redo] [splitmerge]        the full seeded fault run of TestSeeds for seed N
//	run <duration>                           advance the simulation
//	add-node <id> | crash-node <id> [down=<duration>] | expire-lease <id>
//	partition <id> <duration> | zombie <duration> | crash-maintainer | remove-table id=<table>
//	kill-maintainer-at kind=<OpKind> phase=<phase> [cut=none|half|all] [within=<duration>]
//	converge [<duration>]                    stop faults, run, check I6
//	intent                                   the killed operator completed as first intended
//	count <event>                            how often an event happened (evict, elections, ...)
//	chunk-fault what=drop|dup|reorder [body=bootstrap|listing|any|statuses] [index=N] [n=N]
//	                                         the next n answer pieces (of that index) are lost,
//	                                         sent twice, or arrive after the piece that follows;
//	                                         body=statuses: the next heartbeats with statuses
//	chunk-faults-left                        pieces armed faults are still waiting for
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var c *Cluster
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "cluster", "random":
				cfg := scenarioConfig(t, td)
				if td.Cmd == "random" {
					cfg.Faults = true
					if err := New(cfg).Run(); err != nil {
						return "violation: " + firstLine(err.Error()) + "\n"
					}
					return "ok\n"
				}
				c = New(cfg)
				return "ok\n"
			}
			if err := scenarioStep(t, c, td); err != nil {
				t.Fatalf("%s: %s: %v", td.Pos, td.Cmd, err)
			}
			switch td.Cmd {
			case "converge":
				return c.Summary()
			case "count":
				return fmt.Sprintf("%s=%d\n", td.CmdArgs[0].Key, c.Counters()[td.CmdArgs[0].Key])
			case "chunk-faults-left":
				return fmt.Sprintf("left=%d\n", c.fault.chunkFaultsLeft())
			case "intent":
				out, err := c.CheckIntent()
				if err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
				return out
			}
			return "ok\n"
		})
	})
}

func scenarioConfig(t *testing.T, td *datadriven.TestData) Config {
	cfg := Config{Seed: 1, Redo: td.HasArg("redo"), SplitMerge: td.HasArg("splitmerge"),
		MakeBeforeBreak: td.HasArg("mbb")}
	if td.HasArg("nodes") {
		td.ScanArgs(t, "nodes", &cfg.Nodes)
	}
	if td.HasArg("tables") {
		td.ScanArgs(t, "tables", &cfg.Tables)
	}
	if td.HasArg("seed") {
		td.ScanArgs(t, "seed", &cfg.Seed)
	}
	return cfg
}

// scenarioStep runs one scripted command on c.
func scenarioStep(t *testing.T, c *Cluster, td *datadriven.TestData) error {
	arg := func(i int) string {
		if i >= len(td.CmdArgs) {
			t.Fatalf("%s: missing argument %d", td.Cmd, i+1)
		}
		return td.CmdArgs[i].Key
	}
	dur := func(s string) time.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s: %v", td.Cmd, err)
		}
		return d
	}
	opt := func(key, def string) string {
		if td.HasArg(key) {
			td.ScanArgs(t, key, &def)
		}
		return def
	}
	switch td.Cmd {
	case "run":
		return c.RunFor(dur(arg(0)))
	case "add-node":
		c.AddNode(arg(0))
	case "crash-node":
		c.CrashNode(arg(0), dur(opt("down", "5s")))
	case "expire-lease":
		c.ExpireLease(arg(0))
	case "partition":
		c.Partition(arg(0), dur(arg(1)))
	case "zombie":
		c.WakeZombie(dur(arg(0)))
	case "crash-maintainer":
		c.CrashMaintainer()
	case "forge":
		var n int
		td.ScanArgs(t, "n", &n)
		c.Forge(n)
	case "forge-higher":
		if !c.ForgeHigher(opt("to", "n1"), opt("kind", "create")) {
			t.Fatalf("forge-higher: nothing to forge against")
		}
	case "remove-table":
		var id int64
		td.ScanArgs(t, "id", &id)
		return c.RemoveTable(id)
	case "kill-maintainer-at":
		var kind, phase string
		td.ScanArgs(t, "kind", &kind)
		td.ScanArgs(t, "phase", &phase)
		c.KillMaintainerAt(kind, phase, opt("cut", "none"))
		fired, err := c.RunUntil(dur(opt("within", "60s")), func() bool { return c.interrupted != nil })
		if err == nil && !fired {
			t.Fatalf("no %s in phase %s in time", kind, phase)
		}
		return err
	case "converge":
		d := 40 * time.Second
		if len(td.CmdArgs) > 0 {
			d = dur(arg(0))
		}
		return c.Converge(d)
	case "chunk-fault":
		n, index := 1, -1
		if td.HasArg("n") {
			td.ScanArgs(t, "n", &n)
		}
		if td.HasArg("index") {
			td.ScanArgs(t, "index", &index)
		}
		c.fault.chunkFault(opt("what", ""), opt("body", "any"), index, n)
	case "chunk-faults-left":
	case "intent", "count":
	default:
		t.Fatalf("unknown command %s", td.Cmd)
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
