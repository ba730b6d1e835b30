package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/config"
)

// launchBroker (validation only): runs mosquitto with the config mapped.
func launchBroker(t *testing.T, cfg config.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, _ := os.MkdirTemp("", "mosq")
	os.Chmod(dir, 0o755)
	acl := filepath.Join(dir, "acl")
	aclText := "topic readwrite #\ntopic read $SYS/#\n"
	for _, f := range cfg.DenySubscribe {
		aclText += "topic deny " + f + "\n"
	}
	os.WriteFile(acl, []byte(aclText), 0o644)
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nacl_file %s\nsys_interval %d\nmax_queued_messages %d\npersistence false\n", port, acl, cfg.SysInterval, cfg.MaxQueued)
	if cfg.MaxKeepAlive > 0 {
		conf += fmt.Sprintf("max_keepalive %d\n", cfg.MaxKeepAlive)
	}
	if cfg.MaxPacketSize > 0 {
		conf += fmt.Sprintf("max_packet_size %d\n", cfg.MaxPacketSize)
	}
	conf += fmt.Sprintf("max_topic_alias %d\n", cfg.TopicAliasMaximum)
	conf += fmt.Sprintf("max_inflight_messages %d\n", cfg.ReceiveMaximum)
	cf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(cf, []byte(conf), 0o644)
	cmd := exec.Command("/usr/sbin/mosquitto", "-c", cf)
	if os.Getenv("MOSQ_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("mosquitto did not start: %s", conf)
	return ""
}
