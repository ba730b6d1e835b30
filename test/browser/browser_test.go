// Package browser runs real WebSocket clients against the broker: the
// chat-room demo in headless Chromium driven by playwright-core, and
// MQTT.js in Node. They need Debian's chromium, Node and the npm packages
// (run.sh installs all of it); without them the tests skip, except under
// CI=true, where a missing piece is a failure.
package browser

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
)

const chromium = "/usr/bin/chromium"

// need skips the test when a prerequisite is missing, or fails it on CI.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; test/browser/run.sh installs it", what)
	}
	t.Skipf("%s is missing; run test/browser/run.sh to install it and run this test", what)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// startBroker runs a broker with TCP and WebSocket listeners on loopback
// and returns their addresses.
func startBroker(t *testing.T) (tcp, ws string) {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.WSListen = freeAddr(t)
	cfg.SysInterval = 0
	cfg.DataDir = ""
	srv, err := broker.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv.Addr(), cfg.WSListen
}

// freeAddr is a loopback address with a port free a moment ago; the
// broker reports only its TCP listener's address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// node runs a script from this directory with env added.
func node(t *testing.T, script string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("node %s:\n%s", script, strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
}

func needNode(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("node")
	need(t, err == nil, "node")
	need(t, exists("node_modules/mqtt") && exists("node_modules/playwright-core"), "test/browser/node_modules (npm ci)")
}

// TestMQTTJSInterop runs MQTT.js over ws:// and mqtt://, publishing and
// subscribing at QoS 1, with MQTT 3.1.1 and 5.
func TestMQTTJSInterop(t *testing.T) {
	needNode(t)
	tcp, ws := startBroker(t)
	node(t, "interop.mjs", "WS_URL=ws://"+ws+"/mqtt", "MQTT_URL=mqtt://"+tcp)
}

// TestChatRoomInChromium runs the chat-room demo in headless Chromium (see
// chat.mjs) and leaves a screenshot of the second user's page, whose path
// it logs. CP7_ARTIFACTS names the directory for it (default: a fresh
// temporary one, kept after the test).
func TestChatRoomInChromium(t *testing.T) {
	needNode(t)
	need(t, exists(chromium), chromium+" (apt-get install chromium)")
	page := filepath.Join("..", "..", "examples", "chatroom", "public")
	need(t, exists(filepath.Join(page, "chat.js")), "the chat-room bundle (npm ci && npm run build in examples/chatroom)")

	_, ws := startBroker(t)
	site := httptest.NewServer(http.FileServer(http.Dir(page)))
	defer site.Close()
	dir := os.Getenv("CP7_ARTIFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "coolpy7-browser-"); err != nil {
			t.Fatal(err)
		}
	}
	shot, err := filepath.Abs(filepath.Join(dir, "chatroom.png"))
	if err != nil {
		t.Fatal(err)
	}
	node(t, "chat.mjs", "PAGE_URL="+site.URL+"/", "BROKER_URL=ws://"+ws+"/mqtt", "SCREENSHOT="+shot, "CHROMIUM="+chromium)
	t.Logf("screenshot: %s", shot)
}
