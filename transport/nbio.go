package transport

import "github.com/lesismal/nbio/logging"

func init() {
	// nbio logs every listener start and stop at info level through its own
	// logger; the broker reports what matters through slog instead.
	logging.SetLevel(logging.LevelError)
}
