package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes of the binary.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// playgroundCluster is the cluster ID the playground runs under and ctl uses by default, so that
// `tidemark ctl status` works against a playground without flags.
const playgroundCluster = "playground"

// defaultEtcd is where the playground's embedded etcd listens and where ctl looks by default.
const defaultEtcd = "http://127.0.0.1:2379"

// version is set at link time by the Makefile (-ldflags -X main.version=...). It is a variable
// only because the linker can set nothing else; nothing writes it at run time.
var version = "dev"

// usageError marks an error as the caller's mistake in flags or arguments (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef builds a usageError.
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and maps the outcome to an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Run `%s --help` for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitError
}

// newRootCmd builds the command tree. Errors are printed by run, not by cobra, so that each is
// printed once and with the right exit code.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tidemark",
		Short: "tidemark schedules changefeed spans onto worker nodes",
		Long: "tidemark schedules the key-range spans of changefeeds onto worker nodes, keeping every\n" +
			"span owned exactly once through crashes and failover.",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	makeGroup(root)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	root.AddCommand(newVersionCmd(), newServerCmd(), newPlaygroundCmd(), newCtlCmd(), newCertsCmd(), newLoadCmd())
	return root
}

// makeGroup turns cmd into a command that only holds subcommands: an unknown subcommand or a
// bare invocation is a usage error (exit 2) instead of cobra's default of printing help and
// exiting 0, which scripts would mistake for success.
func makeGroup(cmd *cobra.Command) {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown subcommand %q for %q; the subcommands are listed by `%s --help`",
				args[0], c.CommandPath(), c.CommandPath())
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		return usagef("%q needs a subcommand; they are listed by `%s --help`", c.CommandPath(), c.CommandPath())
	}
}

// exactArgs is cobra.ExactArgs with the error marked as a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%q takes %s, got %d arguments", c.CommandPath(), what, len(args))
		}
		return nil
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the tidemark version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintf(c.OutOrStdout(), "tidemark %s\n", version)
			return nil
		},
	}
}

// signalContext returns a context cancelled by the first SIGINT or SIGTERM. After that the
// signals get their default action back, so a second Ctrl-C ends a shutdown that hangs.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}
