package filewatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write := func(s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	st, err := Of(p)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := st.Changed(p); c || err != nil {
		t.Fatalf("unchanged file: %v, %v", c, err)
	}
	// Same size, written in place: only the modification time tells.
	write("two")
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Changed(p); !c {
		t.Error("rewrite in place not seen")
	}
	st, _ = Of(p)
	// Replaced by rename, same size and time: a different file.
	q := p + ".new"
	if err := os.WriteFile(q, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(q, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(q, p); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Changed(p); !c {
		t.Error("replacement not seen")
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Changed(p); err == nil {
		t.Error("a missing file is no error")
	}
	if _, err := Of(p); err == nil {
		t.Error("stamped a missing file")
	}
}
