package embedetcd

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// shutdownNoise is what etcd logs at error level for each of its listeners when it is closed on
// purpose; after Close starts it carries no information.
const shutdownNoise = "setting up serving from embedded etcd failed."

// freshMemberNoise is logged at error level by a brand-new member whose storage version monitor
// runs before the first raft term is persisted; the monitor retries and succeeds shortly after.
const (
	freshMemberNoise      = "failed to update storage version"
	freshMemberNoiseCause = "missing term information"
)

// newServerLogger builds the etcd server's logger: JSON on stderr at level, minus two kinds of
// benign error entries: listener errors while the server is being closed on purpose (closing is
// set by Close) and the storage-version race of a fresh member.
func newServerLogger(level string, closing *atomic.Bool) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("embedetcd: bad log level %q: %w", level, err)
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zap.New(&quietCloseCore{Core: core, closing: closing}), nil
}

// quietCloseCore drops the benign error entries described at newServerLogger.
type quietCloseCore struct {
	zapcore.Core
	closing *atomic.Bool
}

func (c *quietCloseCore) With(fields []zapcore.Field) zapcore.Core {
	return &quietCloseCore{Core: c.Core.With(fields), closing: c.closing}
}

func (c *quietCloseCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == shutdownNoise && c.closing.Load() {
		return ce
	}
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write drops the fresh-member storage version entry, whose cause is only visible in its fields.
func (c *quietCloseCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if e.Message == freshMemberNoise {
		for _, f := range fields {
			if err, ok := f.Interface.(error); ok && strings.Contains(err.Error(), freshMemberNoiseCause) {
				return nil
			}
		}
	}
	return c.Core.Write(e, fields)
}
