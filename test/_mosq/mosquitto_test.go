package e2e

// Interoperability with the mosquitto command-line clients (Debian package
// mosquitto-clients). CI installs them; locally the test is skipped when
// they are missing.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// mosquittoTool returns the path of a mosquitto client binary, skipping
// the test when it is missing (failing it under CI=true).
func mosquittoTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (CI must install mosquitto-clients): %v", name, err)
		}
		t.Skipf("%s not installed (apt-get install mosquitto-clients)", name)
	}
	return p
}

// hostPort splits the broker address for the tools' -h and -p.
func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// mosquittoSub starts mosquitto_sub -C 1 -W 5 and returns a channel that
// yields its output lines and its exit error once it has exited.
func mosquittoSub(t *testing.T, addr string, args ...string) <-chan subResult {
	t.Helper()
	h, p := hostPort(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, mosquittoTool(t, "mosquitto_sub"),
		append([]string{"-h", h, "-p", p, "-C", "1", "-W", "5", "-i", uniqueID("msub")}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan subResult, 1)
	go func() {
		err := cmd.Wait()
		var lines []string
		for _, l := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		if err != nil {
			err = fmt.Errorf("%w (stderr %q)", err, stderr.String())
		}
		done <- subResult{lines, err}
	}()
	return done
}

type subResult struct {
	lines []string
	err   error
}

// roundTrip starts mosquitto_sub, then runs mosquitto_pub every 300 ms
// until mosquitto_sub has received its one message (it cannot tell us when
// its subscription is in place) and returns what mosquitto_sub printed.
func roundTrip(t *testing.T, addr string, subArgs, pubArgs []string) []string {
	t.Helper()
	done := mosquittoSub(t, addr, subArgs...)
	deadline := time.Now().Add(6 * time.Second)
	for {
		mosquittoPub(t, addr, pubArgs...)
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatalf("mosquitto_sub %v: %v; printed %q", subArgs, r.err, r.lines)
			}
			return r.lines
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub %v received nothing within 6 s", subArgs)
		}
	}
}

// mosquittoPub runs mosquitto_pub to completion.
func mosquittoPub(t *testing.T, addr string, args ...string) {
	t.Helper()
	h, p := hostPort(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mosquittoTool(t, "mosquitto_pub"),
		append([]string{"-h", h, "-p", p, "-i", uniqueID("mpub")}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub %v: %v: %s", args, err, out)
	}
}

// mosquitto_sub receives what mosquitto_pub sends, at each QoS and
// protocol version; -F prints topic, QoS, retain flag and payload.
func TestMosquittoClients(t *testing.T) {
	t.Parallel()
	mosquittoTool(t, "mosquitto_sub")
	mosquittoTool(t, "mosquitto_pub")
	addr := startBroker(t, nil)
	for _, ver := range []string{"mqttv31", "mqttv311", "mqttv5"} {
		for q := 0; q <= 2; q++ {
			t.Run(fmt.Sprintf("%s_qos%d", ver, q), func(t *testing.T) {
				t.Parallel()
				topic := fmt.Sprintf("mosq/%s/%d", ver, q)
				payload := fmt.Sprintf("hello from mosquitto_pub %s QoS %d", ver, q)
				got := roundTrip(t, addr,
					[]string{"-V", ver, "-q", fmt.Sprint(q), "-t", topic, "-F", "%t|%q|%r|%p"},
					[]string{"-V", ver, "-q", fmt.Sprint(q), "-t", topic, "-m", payload})
				want := fmt.Sprintf("%s|%d|0|%s", topic, q, payload)
				if len(got) != 1 || got[0] != want {
					t.Fatalf("mosquitto_sub printed %q, want [%q]", got, want)
				}
			})
		}
	}
	t.Run("retained_mqttv5_user_property", func(t *testing.T) {
		t.Parallel()
		mosquittoPub(t, addr, "-V", "mqttv5", "-q", "1", "-r", "-t", "mosqret/retained", "-m", "kept",
			"-D", "publish", "user-property", "origin", "mosquitto")
		r := <-mosquittoSub(t, addr, "-V", "mqttv5", "-q", "1", "-t", "mosqret/#", "-F", "%t|%q|%r|%p|%P")
		if r.err != nil {
			t.Fatalf("mosquitto_sub: %v; printed %q", r.err, r.lines)
		}
		got := r.lines
		want := "mosqret/retained|1|1|kept|origin:mosquitto"
		if len(got) != 1 || got[0] != want {
			t.Fatalf("mosquitto_sub printed %q, want [%q]", got, want)
		}
		mosquittoPub(t, addr, "-V", "mqttv311", "-r", "-n", "-t", "mosqret/retained")
	})
}
