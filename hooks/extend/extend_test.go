package extend

import (
	"encoding/json"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestRequestFieldNames: the msgpack body carries the original's keys.
func TestRequestFieldNames(t *testing.T) {
	b, err := msgpack.Marshal(&Request{Cid: "c1", Username: "u", Password: "p", Remote: "10.0.0.1", Topic: "t", Qos: 1, Payload: []byte("x"), Ok: true})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cid", "username", "password", "remote", "topic", "qos", "payload", "ok"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %v", k, m)
		}
	}
}

func TestParseResponse(t *testing.T) {
	r, err := ParseResponse([]byte(`{"ok":true,"rep":true,"topic":["/aaa","/bbb"]}`))
	if err != nil || !r.Ok || !r.Rep {
		t.Fatalf("%+v %v", r, err)
	}
	if got := Topics(r.Topic); len(got) != 2 || got[1] != "/bbb" {
		t.Errorf("topics %v", got)
	}
	r, _ = ParseResponse([]byte(`{"ok":true,"rep":true,"topic":"a/b","payload":"{\"k\":1}"}`))
	if got := Topics(r.Topic); len(got) != 1 || got[0] != "a/b" {
		t.Errorf("topic %v", got)
	}
	if _, err := ParseResponse([]byte(`{"ok":false,"err":"token error"}`)); err != errToken {
		t.Errorf("token error: %v", err)
	}
	if _, err := ParseResponse([]byte(`not json`)); err == nil {
		t.Error("garbage accepted")
	}
}

// FuzzParseResponse: whatever a service (or anyone able to answer on its
// UDP port) sends, parsing returns an error or a Response, and never
// panics.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{`{"ok":true}`, `{"ok":true,"rep":true,"topic":["a"]}`, `{"topic":"x","payload":[1,2]}`, `{"ok":false,"err":"token error"}`, `[]`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResponse(data)
		if err != nil {
			return
		}
		for _, tp := range Topics(r.Topic) {
			_ = tp
		}
		if r.Payload != nil && !json.Valid(r.Payload) {
			t.Fatalf("payload %q is not the JSON it came from", r.Payload)
		}
	})
}
