package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT (missing from
// package syscall). With it, binding a source address defers picking the
// port to connect, which then only needs the whole 4-tuple to be unique: a
// source address serves many brokers, and TIME_WAIT leftovers of an earlier
// run against another port do not use its ports up.
const ipBindAddressNoPort = 24

// streamWriteTimeout bounds a blocking TLS or WebSocket write, so a broker
// that stops reading ends the run with failures instead of hanging it.
const streamWriteTimeout = 30 * time.Second

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// open connects c to the broker. Plain TCP goes on the epoll engine and
// returns its event loop's number for c's shard; TLS and WebSocket, whose
// libraries need blocking reads, get a reader goroutine each and return -1.
func (w *Worker) open(c *client) (wire, int, error) {
	d := net.Dialer{Timeout: w.opts.ConnectTimeout}
	if len(w.srcs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(w.srcs[c.num%len(w.srcs)])}
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			return errors.Join(err, serr)
		}
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.opts.ConnectTimeout)
	defer cancel()
	var tlsCfg *tls.Config
	if w.opts.TLS {
		// A load generator measures test brokers, typically with throwaway
		// certificates; it does not authenticate them.
		tlsCfg = &tls.Config{InsecureSkipVerify: true, ServerName: w.opts.Host}
	}
	if w.opts.WS {
		scheme := "ws://"
		if w.opts.TLS {
			scheme = "wss://"
		}
		wd := websocket.Dialer{
			NetDialContext:   d.DialContext,
			TLSClientConfig:  tlsCfg,
			Subprotocols:     []string{"mqtt"},
			HandshakeTimeout: w.opts.ConnectTimeout,
		}
		ws, _, err := wd.DialContext(ctx, scheme+w.addr+w.opts.WSPath, nil)
		if err != nil {
			return nil, 0, err
		}
		ww := &wsWire{c: ws}
		go ww.readLoop(c)
		return ww, -1, nil
	}
	conn, err := d.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		return nil, 0, err
	}
	if tlsCfg != nil {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, 0, err
		}
		sw := &streamWire{c: tc}
		go sw.readLoop(c)
		return sw, -1, nil
	}
	eng, err := w.engine()
	if err != nil {
		_ = conn.Close()
		return nil, 0, err
	}
	// AddConn takes over a duplicate of the descriptor and closes conn.
	nc, err := eng.AddConn(conn)
	if err != nil {
		return nil, 0, err
	}
	nc.SetSession(c)
	return nc, nc.Hash(), nil
}

// streamWire is a blocking connection (TLS) read by its own goroutine.
type streamWire struct {
	c net.Conn
}

func (s *streamWire) Write(b []byte) (int, error) {
	_ = s.c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	return s.c.Write(b)
}

func (s *streamWire) Close() error { return s.c.Close() }

func (s *streamWire) readLoop(c *client) {
	buf := make([]byte, 16<<10)
	for {
		n, err := s.c.Read(buf)
		if n > 0 {
			c.onData(buf[:n])
		}
		if err != nil {
			c.onClose(err)
			return
		}
	}
}

// wsWire carries MQTT over WebSocket binary messages. MQTT does not align
// packets with messages (MQTT 5.0 §6), so each write is one message however
// many packets it holds, and reads are framed like a stream.
type wsWire struct {
	mu sync.Mutex
	c  *websocket.Conn
}

func (s *wsWire) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if err := s.c.WriteMessage(websocket.BinaryMessage, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *wsWire) Close() error { return s.c.Close() }

func (s *wsWire) readLoop(c *client) {
	buf := make([]byte, 16<<10)
	for {
		_, r, err := s.c.NextReader()
		if err != nil {
			c.onClose(err)
			return
		}
		for {
			n, err := r.Read(buf)
			if n > 0 {
				c.onData(buf[:n])
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				c.onClose(err)
				return
			}
		}
	}
}
