package transport

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a Handler that keeps what the TCP loop reports.
type recorder struct {
	mu      sync.Mutex
	conns   []Conn
	data    bytes.Buffer
	written atomic.Int64
	closed  chan error
	opened  chan Conn
}

func newRecorder() *recorder {
	return &recorder{closed: make(chan error, 16), opened: make(chan Conn, 16)}
}

func (r *recorder) Open(c Conn) any { r.opened <- c; return r }
func (r *recorder) Data(_ any, b []byte) {
	r.mu.Lock()
	r.data.Write(b)
	r.mu.Unlock()
}
func (r *recorder) Written(_ any, n int)   { r.written.Add(int64(n)) }
func (r *recorder) Close(_ any, err error) { r.closed <- err }

func startTCP(t *testing.T) (*TCP, *recorder) {
	t.Helper()
	r := newRecorder()
	l := NewTCP("127.0.0.1:0", r)
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l, r
}

func accepted(t *testing.T, r *recorder) Conn {
	t.Helper()
	select {
	case c := <-r.opened:
		return c
	case <-time.After(3 * time.Second):
		t.Fatal("connection not accepted")
		return nil
	}
}

func closedWithin(t *testing.T, r *recorder, what string) {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(3 * time.Second):
		t.Fatalf("%s: Handler.Close not called", what)
	}
}

// A write larger than the socket buffers is kept and flushed as the peer
// reads: every byte arrives, in order, and Written accounts for all.
func TestTCPWriteBackpressure(t *testing.T) {
	l, r := startTCP(t)
	peer, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c := accepted(t, r)
	want := make([]byte, 16<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	for off := 0; off < len(want); off += 1 << 20 {
		if _, err := c.Write(want[off : off+1<<20]); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, len(want))
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes arrived changed or out of order")
	}
	deadline := time.Now().Add(3 * time.Second)
	for r.written.Load() != int64(len(want)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if w := r.written.Load(); w != int64(len(want)) {
		t.Fatalf("Written reported %d bytes, want %d", w, len(want))
	}
}

// Data sees what the peer sends; a peer close, a local Close and Stop each
// end in exactly one Handler.Close.
func TestTCPReadAndClose(t *testing.T) {
	l, r := startTCP(t)
	peer, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	accepted(t, r)
	peer.Write([]byte("hello"))
	peer.Close()
	closedWithin(t, r, "peer close")
	r.mu.Lock()
	got := r.data.String()
	r.mu.Unlock()
	if got != "hello" {
		t.Fatalf("Data got %q", got)
	}

	peer2, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer peer2.Close()
	c := accepted(t, r)
	c.Close()
	c.Close()
	closedWithin(t, r, "local close")
	peer2.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := peer2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read after Close: %v, want EOF", err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	select {
	case err := <-r.closed:
		t.Fatalf("second Handler.Close (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}

	peer3, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer peer3.Close()
	accepted(t, r)
	l.Stop()
	closedWithin(t, r, "Stop")
	if _, err := net.DialTimeout("tcp", l.Addr(), time.Second); err == nil {
		t.Fatal("listener still accepts after Stop")
	}
}

// Accepted sockets are close-on-exec from accept4, and RemoteAddr names
// the peer.
func TestTCPRemoteAddr(t *testing.T) {
	l, r := startTCP(t)
	peer, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c := accepted(t, r)
	if got, want := c.RemoteAddr().String(), peer.LocalAddr().String(); got != want {
		t.Fatalf("RemoteAddr %s, want %s", got, want)
	}
}
