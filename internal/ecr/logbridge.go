package ecr

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/sirupsen/logrus"
)

// Distribution logs only through logrus's process-wide standard logger (its
// context logger lives in an internal package). The first NewRegistry takes
// that logger over: its own output is discarded and every entry goes to the
// slog.Logger of the Registry whose instance id the entry carries, or, for
// entries from elsewhere (other users of logrus's standard logger), to the
// oldest open Registry's. With no Registry open, entries are dropped.
//
// Levels are lowered: a request that failed with a client error (4xx) is
// Debug, a server error (5xx, or an error without a code) is Warn, and all
// of Distribution's chatter (info, warnings, "response completed") is Debug.
var bridge = &logBridge{}

type logBridge struct {
	install sync.Once
	mu      sync.Mutex
	ids     []string // open registries, oldest first
	loggers map[string]*slog.Logger
}

// register routes entries tagged with id to l until the returned func is
// called.
func (b *logBridge) register(id string, l *slog.Logger) (unregister func()) {
	b.install.Do(func() {
		std := logrus.StandardLogger()
		std.SetOutput(io.Discard)
		std.SetFormatter(discardFormatter{})
		std.AddHook(b)
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.loggers == nil {
		b.loggers = make(map[string]*slog.Logger)
	}
	b.ids = append(b.ids, id)
	b.loggers[id] = l
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.loggers, id)
		b.ids = slices.DeleteFunc(b.ids, func(s string) bool { return s == id })
	}
}

func (b *logBridge) loggerFor(id string) *slog.Logger {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.loggers[id]; ok {
		return l
	}
	if len(b.ids) > 0 {
		return b.loggers[b.ids[0]]
	}
	return nil
}

// Levels implements logrus.Hook.
func (b *logBridge) Levels() []logrus.Level { return logrus.AllLevels }

// Fire implements logrus.Hook.
func (b *logBridge) Fire(e *logrus.Entry) error {
	id, _ := e.Data[instanceIDKey].(string)
	l := b.loggerFor(id)
	if l == nil {
		return nil
	}
	ctx := context.Background()
	level := slogLevel(e)
	if !l.Enabled(ctx, level) {
		return nil
	}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if k != instanceIDKey && k != "go.version" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, e.Data[k]))
	}
	l.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}

// slogLevel lowers a logrus entry's level (see bridge).
func slogLevel(e *logrus.Entry) slog.Level {
	if e.Level > logrus.ErrorLevel {
		return slog.LevelDebug
	}
	if code, ok := e.Data["err.code"].(errcode.ErrorCode); ok && code.Descriptor().HTTPStatusCode < 500 {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// discardFormatter spares logrus formatting entries nobody reads.
type discardFormatter struct{}

func (discardFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }
