package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
)

// A $queue group whose messages wait in the store is known right after a
// restart, with its depth, in SharedGroups and $SYS, before anyone publishes
// or subscribes to it again.
func TestQueueGroupKnownAfterRestart(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	s, stop := startServer(t, cfg)
	pub, _ := connect3(t, s.Addr(), uniqueID("ql-pub"), true)
	const n = 3
	for i := range n {
		pub.pub("$queue/g", 1, false, fmt.Sprintf("job %d", i))
	}
	pub.Disconnect(50)
	stop()

	cfg.Listen, cfg.SysInterval = "127.0.0.1:0", 1
	s, err := broker.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	want := fmt.Sprint([]broker.SharedGroup{{Name: "g", Filter: "$queue/g", Strategy: "round_robin", Queue: true, Members: []string{}, Queued: n}})
	if got := fmt.Sprint(s.SharedGroups()); got != want {
		t.Fatalf("SharedGroups after restart = %s, want %s", got, want)
	}
	watch, _ := connect3(t, s.Addr(), uniqueID("ql-watch"), true)
	watch.mustSub("$SYS/broker/shared/groups", 0)
	var groups []broker.SharedGroup
	m := watch.next("$SYS/broker/shared/groups")
	if err := json.Unmarshal([]byte(m.Payload), &groups); err != nil {
		t.Fatalf("%q: %v", m.Payload, err)
	}
	if fmt.Sprint(groups) != want {
		t.Fatalf("$SYS/broker/shared/groups = %+v, want %s", groups, want)
	}
}
