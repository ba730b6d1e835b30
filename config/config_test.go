package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlagsOverrideFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(file, []byte("listen = \"127.0.0.1:1999\"\nmax_keepalive = 60\nmax_connections = 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("coolpy7", []string{"-c", file, "-mc", "7"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1999" || c.MaxKeepAlive != 60 || c.MaxConnections != 7 {
		t.Fatalf("got listen=%q mka=%d mc=%d", c.Listen, c.MaxKeepAlive, c.MaxConnections)
	}
	if c.ConnectTimeout != 2 {
		t.Fatalf("default connect timeout lost: %d", c.ConnectTimeout)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		file string
		args []string
		want string
	}{
		"unknown key":     {"nosuch = 1\n", nil, "unknown keys: nosuch"},
		"bad toml":        {"listen = \n", nil, "config"},
		"negative limit":  {"", []string{"-mc", "-1"}, "max_connections"},
		"bad log level":   {"", []string{"-log", "loud"}, "log_level"},
		"keepalive range": {"max_keepalive = 70000\n", nil, "max_keepalive"},
		"stray argument":  {"", []string{"extra"}, "unexpected argument"},
		"bad durability":  {"durability = \"sometimes\"\n", nil, "durability"},
		"bad policy":      {"", []string{"-qp", "drop-random"}, "queue policy"},
		"negative ttl":    {"", []string{"-ot", "-1"}, "TTLs"},
		"repair no dir":   {"", []string{"-repair", "-data", ""}, "-repair needs"},
	} {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".toml")
				if err := os.WriteFile(f, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append([]string{"-c", f}, args...)
			}
			_, err := Parse("coolpy7", args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestStoreSettings(t *testing.T) {
	c, err := Parse("coolpy7", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./data" || c.Durability != "durable" || c.QueuePolicy != "refuse-newest" {
		t.Fatalf("defaults: data %q durability %q policy %q", c.DataDir, c.Durability, c.QueuePolicy)
	}
	c, err = Parse("coolpy7", []string{"-data", "", "-durability", "100ms", "-mqb", "4096", "-qp", "drop-oldest",
		"-ot", "1", "-st", "2", "-it", "3", "-wt", "4", "-rt", "5", "-repair=false"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "" || c.Durability != "100ms" || c.MaxQueuedBytes != 4096 || c.QueuePolicy != "drop-oldest" ||
		c.MessageTTL != 1 || c.SessionTTL != 2 || c.PacketIDTTL != 3 || c.WillTTL != 4 || c.RetainedTTL != 5 {
		t.Fatalf("flags not applied: %+v", c)
	}
}
