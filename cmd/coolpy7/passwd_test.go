package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/passwd"
)

// pipeWith is a stdin that reads s, as `echo pw | coolpy7 passwd` gives.
func pipeWith(t *testing.T, s string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString(s)
	w.Close()
	t.Cleanup(func() { r.Close() })
	return r
}

func TestPasswdCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	var out, errs bytes.Buffer
	if rc := runPasswd([]string{"-cost", "4", path, "alice"}, pipeWith(t, "s3cret\n"), &out, &errs); rc != 0 {
		t.Fatalf("set alice: exit %d: %s", rc, errs.String())
	}
	if rc := runPasswd([]string{"-cost", "4", path, "bob"}, pipeWith(t, "b0b"), &out, &errs); rc != 0 {
		t.Fatalf("set bob (no newline): exit %d: %s", rc, errs.String())
	}
	f, err := passwd.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Check("alice", []byte("s3cret")) != auth.Allow || f.Check("bob", []byte("b0b")) != auth.Allow {
		t.Fatal("the passwords set do not check")
	}
	if f.Check("alice", []byte("wrong")) == auth.Allow {
		t.Fatal("a wrong password checks")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	if rc := runPasswd([]string{"-d", path, "alice"}, pipeWith(t, ""), &out, &errs); rc != 0 {
		t.Fatalf("delete alice: exit %d: %s", rc, errs.String())
	}
	if rc := runPasswd([]string{"-d", path, "alice"}, pipeWith(t, ""), &out, &errs); rc != 1 {
		t.Errorf("deleting a missing user: exit %d, want 1", rc)
	}
	if rc := runPasswd([]string{path, "carol"}, pipeWith(t, ""), &out, &errs); rc != 1 {
		t.Errorf("empty password: exit %d, want 1", rc)
	}
	if rc := runPasswd([]string{path}, pipeWith(t, ""), &out, &errs); rc != 2 {
		t.Errorf("missing user argument: exit %d, want 2", rc)
	}
	f, err = passwd.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if users := f.Users(); len(users) != 1 || users[0] != "bob" {
		t.Errorf("users %v, want [bob]", users)
	}
}
