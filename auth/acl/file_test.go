package acl

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"allow pub", "line 1"},
		{"\n\nallow pubsubx a", "line 3: want pub, sub or pubsub"},
		{"permit pub a", "unknown statement"},
		{"user", "user needs a name"},
		{"client ", "client needs a name"},
		{"all everyone", "nothing may follow"},
		{"allow pub a/#/b", "not a valid topic filter"},
		{"deny sub $share/g/a", "shared subscriptions"},
	} {
		_, err := Parse(strings.NewReader(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
}

func TestParseDetails(t *testing.T) {
	f := mustParse(t, "\t# comment\r\n  allow\tpub  a b/c  \r\nuser with space\nallow sub x\nclient empty\n")
	a := f.For("with space", "empty")
	if !a.CanPublish("a b/c") || a.CanPublish("a") {
		t.Error("pattern with a space not kept whole")
	}
	other := f.For("with", "")
	if a.Subscribe("x") != SubGranted || other.Subscribe("x") != SubDenied {
		t.Error("user name with a space not kept whole")
	}
	if _, ok := f.clients["empty"]; !ok {
		t.Error("empty client section dropped")
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("loaded a missing file")
	}
	p := writeFile(t, filepath.Join(t.TempDir(), "acl"), "bad line\n")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("error %v does not name the file", err)
	}
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStoreReload(t *testing.T) {
	p := writeFile(t, filepath.Join(t.TempDir(), "acl"), "allow pub a\n")
	s, err := LoadStore(p)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("Reload of an unchanged file = %v, %v", changed, err)
	}
	bound := s.File().For("u", "c")
	writeFile(t, p, "allow pub b\n")
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("Reload after a change = %v, %v", changed, err)
	}
	if a := s.File().For("u", "c"); a.CanPublish("a") || !a.CanPublish("b") {
		t.Error("new rules not in force")
	}
	if !bound.CanPublish("a") {
		t.Error("an ACL bound before the reload changed under its connection")
	}
	writeFile(t, p, "allow pub #/x\n")
	if changed, err := s.Reload(); changed || err == nil {
		t.Fatalf("Reload of a broken file = %v, %v", changed, err)
	}
	if a := s.File().For("u", "c"); !a.CanPublish("b") {
		t.Error("a broken file replaced the rules in force")
	}
}

func TestStoreWatch(t *testing.T) {
	p := writeFile(t, filepath.Join(t.TempDir(), "acl"), "allow pub a\n")
	s, err := LoadStore(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx, time.Millisecond, nil); close(done) }()
	writeFile(t, p, "allow pub b\n")
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		if a := s.File().For("u", "c"); a.CanPublish("b") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the change")
		}
	}
	cancel()
	<-done
}
