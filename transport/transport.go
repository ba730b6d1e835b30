// Package transport carries MQTT bytes between sockets and the broker. Every
// listener (TCP, and TLS, WebSocket and WSS layered on the same epoll loops)
// turns its connections into the same four events on a Handler, so the
// broker never knows what carries a client.
package transport

import "net"

// Conn is one client connection as the broker sees it.
type Conn interface {
	// Write never blocks: what the socket cannot take now is buffered by the
	// transport and flushed when the socket is writable.
	Write(b []byte) (int, error)
	Close() error
	RemoteAddr() net.Addr
}

// Batcher is implemented by connections that can stage bytes and send
// several writes with one system call (plain TCP; TLS and WebSocket do
// not). Staged bytes go out in call order with every Write: a Write made
// while bytes are staged goes behind them.
type Batcher interface {
	// WriteLater stages b. It reports first when the caller is the one who
	// must call Flush; otherwise an earlier caller's Flush, or the
	// transport, sends b.
	WriteLater(b []byte) (first bool, err error)
	// Flush sends what is staged, never blocking; what the socket cannot
	// take now is sent when it is writable.
	Flush()
}

// Handler receives a listener's connection events. Calls for one connection
// never overlap; calls for different connections run concurrently.
type Handler interface {
	// Open is called for a new connection and returns the state the
	// transport hands back with every later event of that connection.
	Open(c Conn) any
	// Data delivers bytes read from the connection. data is only valid
	// during the call: the read buffer belongs to the event loop, not the
	// connection, so an idle connection holds none.
	Data(state any, data []byte)
	// Written reports n bytes handed to the kernel. It runs with the
	// connection's write lock held, so it must not write.
	Written(state any, n int)
	// Close is called once when the connection is gone.
	Close(state any, err error)
}

// Listener is one listening endpoint.
type Listener interface {
	Start() error
	// Addr is the bound address, with the real port when 0 was asked.
	Addr() string
	// Stop closes the listener and every connection it accepted.
	Stop()
}
