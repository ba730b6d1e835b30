package e2e

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
)

// Every wait in the suite is bounded by one of these.
const (
	// waitTimeout bounds waiting for something that must happen (a
	// delivery, an ack, a CONNACK).
	waitTimeout = 5 * time.Second
	// quietPeriod is how long a test listens to be sure something does NOT
	// happen (a message that must not be delivered). It is long compared to
	// a loopback round trip, short compared to the suite.
	quietPeriod = 700 * time.Millisecond
	// closeWithin bounds how long the broker may take to close a connection
	// after a protocol violation.
	closeWithin = 2 * time.Second
)

// TestMain raises the default -test.parallel: the tests spend their time
// waiting on sockets and timers, not on the CPU, so running only
// GOMAXPROCS of them at once (the default, 2 on CI) would make the suite
// several times slower for nothing. An explicit -parallel still wins.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}

// startBroker starts a broker on 127.0.0.1:0 with the suite's defaults
// ($SYS every second, "test/nosubscribe" denied), lets mod adjust the
// config, and returns its address. The broker is shut down when the test
// (and every client it registered for cleanup after this call) ends.
func startBroker(t *testing.T, mod func(*config.Config)) string {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DenySubscribe = []string{"test/nosubscribe"}
	cfg.SysInterval = 1
	cfg.DataDir = "" // in memory; tests that need the disk set a t.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	return launchBroker(t, cfg)
}

// launchBroker runs the broker in-process. It turns a panic during start-up
// into a test failure so one unfinished broker function fails each test
// instead of killing the whole test binary.
func launchBroker(t *testing.T, cfg config.Config) (addr string) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("broker panicked while starting: %v", r)
		}
	}()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("E2E_BROKER_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	s, err := broker.New(cfg, log)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("broker Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("broker Shutdown: %v", err)
		}
	})
	addr = s.Addr()
	if addr == "" {
		t.Fatal("broker Addr() is empty after Start")
	}
	return addr
}

var idSeq atomic.Int64

// uniqueID returns a client identifier unique within the test binary,
// made of characters every server must accept [MQTT-3.1.3-5].
func uniqueID(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, idSeq.Add(1))
}

// recv waits up to d for a value on ch.
func recv[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		var zero T
		t.Fatalf("timed out after %v waiting for %s", d, what)
		return zero
	}
}

// recvN receives exactly n values from ch within d in total.
func recvN[T any](t *testing.T, ch <-chan T, n int, d time.Duration, what string) []T {
	t.Helper()
	deadline := time.After(d)
	out := make([]T, 0, n)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s: got %d of %d", d, what, len(out), n)
		}
	}
	return out
}

// expectNothing fails if anything arrives on ch within d.
func expectNothing[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	case <-time.After(d):
	}
}

// settle gives the broker time to finish processing a DISCONNECT (or a
// dropped connection) the client has just sent, before the next step
// depends on it: the protocol has no acknowledgement for DISCONNECT.
func settle() { time.Sleep(100 * time.Millisecond) }

// u16, u32 and u8 make pointers for optional properties.
func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func u8(v byte) *byte      { return &v }
