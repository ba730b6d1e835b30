package transport

import (
	"runtime"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
)

func init() {
	// nbio logs every listener start and stop at info level through its own
	// logger; the broker reports what matters through slog instead.
	logging.SetLevel(logging.LevelError)
}

// TCP is a plain MQTT listener on the nbio epoll engine.
type TCP struct {
	engine *nbio.Engine
}

// NewTCP makes a TCP listener on addr that reports to h.
func NewTCP(addr string, h Handler) *TCP {
	g := nbio.NewEngine(nbio.Config{
		Name:    "mqtt-tcp",
		Network: "tcp",
		Addrs:   []string{addr},
		// One event loop per core; each owns one read buffer shared by all
		// of its connections.
		NPoller:        runtime.GOMAXPROCS(0),
		ReadBufferSize: 64 << 10,
	})
	g.OnOpen(func(c *nbio.Conn) {
		markCloexec(c.Hash())
		c.SetSession(h.Open(c))
	})
	g.OnData(func(c *nbio.Conn, data []byte) {
		h.Data(c.Session(), data)
	})
	g.OnWrittenSize(func(c *nbio.Conn, _ []byte, n int) {
		if s := c.Session(); s != nil {
			h.Written(s, n)
		}
	})
	g.OnClose(func(c *nbio.Conn, err error) {
		if s := c.Session(); s != nil {
			h.Close(s, err)
		}
	})
	return &TCP{engine: g}
}

// Start binds the address and starts the event loops.
func (t *TCP) Start() error { return t.engine.Start() }

// Addr is the bound address.
func (t *TCP) Addr() string { return t.engine.Addrs[0] }

// Stop closes the listener and all its connections.
func (t *TCP) Stop() { t.engine.Stop() }
