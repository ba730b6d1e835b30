package transport

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
	"unsafe"
)

// Staged bytes cost no system call until Flush (Written counts each byte
// the kernel took); a Write made meanwhile goes behind them; only the
// first WriteLater is told to flush.
func TestTCPWriteLater(t *testing.T) {
	l, r := startTCP(t)
	peer, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c := accepted(t, r).(Batcher)
	first, err := c.WriteLater([]byte("one,"))
	if err != nil || !first {
		t.Fatalf("first WriteLater: first=%v err=%v", first, err)
	}
	if first, err = c.WriteLater([]byte("two,")); err != nil || first {
		t.Fatalf("second WriteLater: first=%v err=%v, want not first", first, err)
	}
	c.(Conn).Write([]byte("three"))
	if n := r.written.Load(); n != 0 {
		t.Fatalf("%d bytes went to the kernel before Flush", n)
	}
	c.Flush()
	c.Flush() // nothing staged: no-op
	want := "one,two,three"
	if n := r.written.Load(); n != int64(len(want)) {
		t.Fatalf("Written reported %d bytes, want %d", n, len(want))
	}
	got := make([]byte, len(want))
	peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != want {
		t.Fatalf("peer read %q, %v; want %q", got, err, want)
	}
	// After a Flush the next caller is first again.
	if first, _ = c.WriteLater([]byte("x")); !first {
		t.Fatal("WriteLater after Flush is not first")
	}
	c.Flush()
}

// Behind bytes waiting for EPOLLOUT nobody is asked to flush: the loop
// sends the staged bytes after the backlog, in order.
func TestTCPWriteLaterBehindBacklog(t *testing.T) {
	l, r := startTCP(t)
	peer, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c := accepted(t, r)
	big := bytes.Repeat([]byte{'b'}, 16<<20)
	c.Write(big)
	first, err := c.(Batcher).WriteLater([]byte("tail"))
	if err != nil || first {
		t.Fatalf("WriteLater behind a backlog: first=%v err=%v", first, err)
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(io.LimitReader(peer, int64(len(big)+4)))
	if err != nil || len(got) != len(big)+4 || string(got[len(big):]) != "tail" || !bytes.Equal(got[:len(big)], big) {
		t.Fatalf("peer read %d bytes ending %q, %v", len(got), got[max(0, len(got)-4):], err)
	}
}

// A connection closed with bytes staged sends nothing afterwards and says
// so to a later WriteLater; its Flush is a no-op.
func TestTCPWriteLaterClosed(t *testing.T) {
	l, r := startTCP(t)
	peer, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c := accepted(t, r)
	if _, err := c.(Batcher).WriteLater([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	closedWithin(t, r, "Close with staged bytes")
	c.(Batcher).Flush()
	if _, err := c.(Batcher).WriteLater([]byte("x")); err != net.ErrClosed {
		t.Fatalf("WriteLater after Close: %v, want net.ErrClosed", err)
	}
	if n := r.written.Load(); n != 0 {
		t.Fatalf("%d bytes written after close", n)
	}
	peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	if b, err := io.ReadAll(peer); len(b) != 0 {
		t.Fatalf("peer read %q (%v) from a connection closed before its flush", b, err)
	}
}

// TestTCPConnSize keeps what every connection pays: staging's two fields
// fit the 80-byte size class the connection already used.
func TestTCPConnSize(t *testing.T) {
	if n := unsafe.Sizeof(tcpConn{}); n > 80 {
		t.Errorf("tcpConn is %d bytes, past the 80-byte size class", n)
	}
}
