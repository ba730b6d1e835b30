package loadgen

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestStopSoonAfterDialEndsEventLoops stops a worker right after its first
// dial started the epoll engine: the event loops must still end, rather
// than miss the stop and spin (see Worker.Stop).
func TestStopSoonAfterDialEndsEventLoops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and never answer
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	before := runtime.NumGoroutine()
	for range 3 {
		o := DefaultOptions(ScenarioConn)
		o.Port, _ = strconv.Atoi(port)
		o.Clients = 2
		o.ConnectTimeout = 50 * time.Millisecond
		w := NewWorker(WorkerSpec{Opts: o, Conns: Span{0, 2}, Procs: 1})
		w.Connect(context.Background(), roleConn)
		if w.eng == nil {
			t.Fatal("no engine after dialing")
		}
		st := w.Stop()
		if st.Dialed != 2 || st.ConnFailed != 2 || st.Failures["timeout waiting for CONNACK"] != 2 {
			t.Fatalf("stats %+v", st)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left running, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
