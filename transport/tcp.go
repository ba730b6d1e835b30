package transport

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// This file is the TCP event loop every listener runs on (TLS and
// WebSocket are layers over it, see stream.go). It is the broker's own
// rather than nbio's because per-connection memory decides how many of ten
// million connections fit: nbio takes accepted sockets over from net.TCPConn
// and keeps its 208-byte Conn plus two *net.TCPAddr and sockaddrs, about
// 360 bytes a connection. Here a connection is one small struct found by
// descriptor number; its address is asked of the kernel only when wanted.

// tcpConn is one accepted socket.
type tcpConn struct {
	fd  int32
	gen uint32 // tells this connection from an earlier one on the same fd
	p   *poller

	mu  sync.Mutex // guards out, box, the flags, and the descriptor's life
	out []byte     // bytes the socket has not taken yet; nil when none
	// box is the pooled buffer out lives in, so that a connection that
	// gets a message now and then holds no buffer between them.
	box     *[]byte
	closed  bool
	waiting bool // EPOLLOUT is armed
	// staged: a caller of WriteLater has yet to Flush; out is sent then,
	// not on EPOLLOUT.
	staged bool

	state any
}

// poller is one event loop: an epoll instance and its read buffer.
type poller struct {
	l    *TCP
	epfd int
	wake int // eventfd that stops the loop
	buf  []byte
}

const (
	readEvents  = syscall.EPOLLIN | syscall.EPOLLRDHUP
	writeEvents = readEvents | syscall.EPOLLOUT
	// maxReads bounds the reads of one connection per wake-up, so one
	// busy client cannot starve the others on its loop.
	maxReads = 4
)

var errStopped = errors.New("listener stopped")

// Connection generations are 31-bit, so these event tags never collide.
const (
	wakePad     = -1
	listenerPad = -2
)

// listenTCP opens a non-blocking listening socket. An address without a
// host listens on every IPv6 and IPv4 address, as net.Listen does.
func listenTCP(addr string) (int, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, err
	}
	family, sa := syscall.AF_INET, syscall.Sockaddr(&syscall.SockaddrInet4{Port: ta.Port})
	switch ip := ta.IP; {
	case ip == nil || ip.IsUnspecified() && ip.To4() == nil:
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: ta.Port}
	case ip.To4() != nil:
		copy(sa.(*syscall.SockaddrInet4).Addr[:], ip.To4())
	default:
		s6 := &syscall.SockaddrInet6{Port: ta.Port}
		copy(s6.Addr[:], ip.To16())
		family, sa = syscall.AF_INET6, s6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil && family == syscall.AF_INET6 && ta.IP == nil {
		// No IPv6 on this host: every IPv4 address will do.
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: ta.Port}
		fd, err = syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	}
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if family == syscall.AF_INET6 && ta.IP == nil {
		syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, &net.OpError{Op: "listen", Net: "tcp", Addr: ta, Err: os.NewSyscallError("bind", err)}
	}
	if err := syscall.Listen(fd, syscall.SOMAXCONN); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("listen", err)
	}
	return fd, nil
}

func newPoller(l *TCP) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	r1, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if e != 0 {
		syscall.Close(epfd)
		return nil, e
	}
	p := &poller{l: l, epfd: epfd, wake: int(r1), buf: make([]byte, 64<<10)}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake), Pad: wakePad}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake, &ev); err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

func (p *poller) release() {
	syscall.Close(p.wake)
	syscall.Close(p.epfd)
}

// add registers c; its state is set, so events may flow from here on.
func (p *poller) add(c *tcpConn) error {
	ev := syscall.EpollEvent{Events: readEvents, Fd: c.fd, Pad: int32(c.gen)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(c.fd), &ev)
}

func (p *poller) run() {
	defer p.l.wg.Done()
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for i := range events[:n] {
			ev := &events[i]
			switch ev.Pad {
			case wakePad:
				return // woken to stop
			case listenerPad:
				p.l.acceptReady()
				continue
			}
			c := p.l.lookup(ev.Fd, uint32(ev.Pad))
			if c == nil {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 {
				c.flush()
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				p.read(c)
			}
		}
	}
}

// read drains what the socket holds, up to maxReads buffers, and hands
// each to the broker. The read itself runs under the connection's lock so
// the descriptor cannot be closed and reused by a new connection under it.
func (p *poller) read(c *tcpConn) {
	for i := 0; i < maxReads; i++ {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		n, err := syscall.Read(int(c.fd), p.buf)
		c.mu.Unlock()
		switch {
		case n > 0:
			p.l.h.Data(c.state, p.buf[:n])
			if n < len(p.buf) {
				return
			}
		case err == syscall.EAGAIN || err == syscall.EINTR:
			return
		case err != nil:
			c.closeWith(err)
			return
		default:
			c.closeWith(nil) // the peer closed
			return
		}
	}
}

// Write sends b, or keeps what the socket cannot take and sends it when
// the socket is writable again.
func (c *tcpConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if len(c.out) > 0 {
		// Behind what waits for EPOLLOUT or a Flush: order is kept.
		c.out = append(c.out, b...)
		c.mu.Unlock()
		return len(b), nil
	}
	n, err := writeSome(int(c.fd), b)
	if n > 0 {
		c.p.l.h.Written(c.state, n)
	}
	if err != nil {
		c.mu.Unlock()
		c.closeWith(err)
		return n, err
	}
	if n < len(b) {
		c.hold(b[n:])
		c.arm(true)
	}
	c.mu.Unlock()
	return len(b), nil
}

// WriteLater stages b behind what the connection already holds, without a
// system call. It reports first when no one else is due to send the staged
// bytes (no earlier WriteLater awaiting its Flush, no EPOLLOUT armed): the
// caller must then call Flush.
func (c *tcpConn) WriteLater(b []byte) (first bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, net.ErrClosed
	}
	first = !c.staged && !c.waiting
	if first {
		c.staged = true
	}
	c.hold(b)
	c.mu.Unlock()
	return first, nil
}

// Flush sends what WriteLater staged; what the socket cannot take is sent
// on EPOLLOUT, as with Write.
func (c *tcpConn) Flush() {
	c.mu.Lock()
	if !c.staged || c.closed {
		c.mu.Unlock()
		return
	}
	c.staged = false
	c.send()
}

// outPool holds the buffers of out. A staged burst is a few small packets;
// a buffer grown past maxPooled by a slow reader is left to the collector.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooled = 64 << 10

// hold appends b to out, taking a pooled buffer for the first bytes.
// Callers hold mu.
func (c *tcpConn) hold(b []byte) {
	if c.box == nil {
		c.box = outPool.Get().(*[]byte)
		c.out = (*c.box)[:0]
	}
	c.out = append(c.out, b...)
}

// drop empties out and gives its buffer back. Callers hold mu.
func (c *tcpConn) drop() {
	if c.box != nil && cap(c.out) <= maxPooled {
		*c.box = c.out[:0]
		outPool.Put(c.box)
	}
	c.out, c.box = nil, nil
}

// writeSome writes until the socket would block; EAGAIN is not an error.
func writeSome(fd int, b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := syscall.Write(fd, b[done:])
		if n > 0 {
			done += n
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return done, nil
		case err != nil:
			return done, err
		}
	}
	return done, nil
}

// flush writes what waited for the socket to become writable.
func (c *tcpConn) flush() {
	c.mu.Lock()
	if c.closed || len(c.out) == 0 {
		c.mu.Unlock()
		return
	}
	c.send()
}

// send writes out and arms EPOLLOUT for what the socket left. Called with
// mu held; it returns with mu released.
func (c *tcpConn) send() {
	n, err := writeSome(int(c.fd), c.out)
	if n > 0 {
		c.p.l.h.Written(c.state, n)
	}
	if err != nil {
		c.mu.Unlock()
		c.closeWith(err)
		return
	}
	if n == len(c.out) {
		c.drop()
		c.arm(false)
	} else {
		c.out = append(c.out[:0], c.out[n:]...)
		c.arm(true)
	}
	c.mu.Unlock()
}

// arm turns EPOLLOUT on or off. Callers hold mu.
func (c *tcpConn) arm(out bool) {
	if c.waiting == out {
		return
	}
	c.waiting = out
	ev := syscall.EpollEvent{Events: readEvents, Fd: c.fd, Pad: int32(c.gen)}
	if out {
		ev.Events = writeEvents
	}
	syscall.EpollCtl(c.p.epfd, syscall.EPOLL_CTL_MOD, int(c.fd), &ev)
}

// Close closes the connection; the broker hears of it through
// Handler.Close.
func (c *tcpConn) Close() error {
	c.closeWith(nil)
	return nil
}

func (c *tcpConn) closeWith(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.drop()
	state := c.state
	l := c.p.l
	// Forget the connection before the descriptor number can be reused.
	l.conns[c.fd].CompareAndSwap(c, nil)
	syscall.EpollCtl(c.p.epfd, syscall.EPOLL_CTL_DEL, int(c.fd), nil)
	syscall.Close(int(c.fd))
	c.mu.Unlock()
	// Close may be called with broker locks held (a failed write inside a
	// delivery), so the broker is told from another goroutine, as nbio
	// does; this is once per connection, not per message.
	go l.h.Close(state, err)
}

// RemoteAddr asks the kernel; it is only wanted for logs.
func (c *tcpConn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return tcpAddr{}
	}
	sa, err := syscall.Getpeername(int(c.fd))
	if err != nil {
		return tcpAddr{}
	}
	return addrOf(sa)
}

// tcpAddr is a peer address as a value.
type tcpAddr netip.AddrPort

func (a tcpAddr) Network() string { return "tcp" }

// AddrPort gives the address without formatting and parsing it.
func (a tcpAddr) AddrPort() netip.AddrPort { return netip.AddrPort(a) }
func (a tcpAddr) String() string           { return netip.AddrPort(a).String() }

func addrOf(sa syscall.Sockaddr) tcpAddr {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return tcpAddr(netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)))
	case *syscall.SockaddrInet6:
		return tcpAddr(netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)))
	}
	return tcpAddr{}
}

// TCP is a plain MQTT listener on its own epoll loops, one per core.
type TCP struct {
	addr string
	h    Handler

	lfd     int // listening socket, -1 before Start
	bound   string
	pollers []*poller
	conns   []atomic.Pointer[tcpConn] // by descriptor number
	gen     atomic.Uint32
	stopped atomic.Bool
	wg      sync.WaitGroup
}

// NewTCP makes a TCP listener on addr that reports to h.
func NewTCP(addr string, h Handler) *TCP { return &TCP{addr: addr, h: h, lfd: -1} }

// Start binds the address and starts the event loops.
func (t *TCP) Start() error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	// The table is indexed by descriptor, so it spans the descriptor limit;
	// only the pages that hold live connections are ever touched.
	t.conns = make([]atomic.Pointer[tcpConn], rl.Cur)
	lfd, err := listenTCP(t.addr)
	if err != nil {
		return err
	}
	t.lfd = lfd
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		p, err := newPoller(t)
		if err != nil {
			syscall.Close(lfd)
			for _, q := range t.pollers {
				q.release()
			}
			return err
		}
		t.pollers = append(t.pollers, p)
	}
	// The first loop also accepts.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(lfd), Pad: listenerPad}
	if err := syscall.EpollCtl(t.pollers[0].epfd, syscall.EPOLL_CTL_ADD, lfd, &ev); err != nil {
		syscall.Close(lfd)
		for _, q := range t.pollers {
			q.release()
		}
		return err
	}
	sa, _ := syscall.Getsockname(lfd)
	t.bound = net.TCPAddrFromAddrPort(netip.AddrPort(addrOf(sa))).String()
	for _, p := range t.pollers {
		t.wg.Add(1)
		go p.run()
	}
	return nil
}

// acceptReady takes every pending connection with accept4(2), already
// non-blocking and close-on-exec, when the listening socket is readable.
func (t *TCP) acceptReady() {
	for {
		fd, _, err := syscall.Accept4(t.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		switch err {
		case nil:
			t.adopt(fd)
		case syscall.EINTR, syscall.ECONNABORTED:
		default:
			// EAGAIN: all taken. EMFILE and the like: the connection stays
			// in the backlog and the level-triggered event comes back once
			// a descriptor frees up; pause so that does not spin.
			if err != syscall.EAGAIN {
				time.Sleep(10 * time.Millisecond)
			}
			return
		}
	}
}

func (t *TCP) adopt(fd int) {
	if fd >= len(t.conns) {
		syscall.Close(fd)
		return
	}
	// MQTT packets are small and latency-bound.
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	p := t.pollers[fd%len(t.pollers)]
	c := &tcpConn{fd: int32(fd), gen: t.gen.Add(1) & 0x7fffffff, p: p}
	// The lock makes a Write from whoever Open hands c to wait for state.
	c.mu.Lock()
	c.state = t.h.Open(c)
	c.mu.Unlock()
	t.conns[fd].Store(c)
	if err := p.add(c); err != nil {
		c.closeWith(err)
	}
}

// lookup finds the connection an event is for, if it is still the same one.
func (t *TCP) lookup(fd int32, gen uint32) *tcpConn {
	if int(fd) >= len(t.conns) || fd < 0 {
		return nil
	}
	c := t.conns[fd].Load()
	if c == nil || c.gen != gen {
		return nil
	}
	return c
}

// Addr is the bound address.
func (t *TCP) Addr() string {
	if t.bound == "" {
		return t.addr
	}
	return t.bound
}

// Stop closes the listener and all its connections.
func (t *TCP) Stop() {
	if t.lfd < 0 || t.stopped.Swap(true) {
		return
	}
	syscall.EpollCtl(t.pollers[0].epfd, syscall.EPOLL_CTL_DEL, t.lfd, nil)
	syscall.Close(t.lfd)
	for i := range t.conns {
		if c := t.conns[i].Load(); c != nil {
			c.closeWith(errStopped)
		}
	}
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	for _, p := range t.pollers {
		syscall.Write(p.wake, one)
	}
	t.wg.Wait()
	for _, p := range t.pollers {
		p.release()
	}
}
