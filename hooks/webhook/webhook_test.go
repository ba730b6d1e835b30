package webhook

import (
	"testing"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/hooks"
)

func TestResult(t *testing.T) {
	info := &auth.ConnectInfo{ClientID: "c", Username: "u", Password: []byte("p")}
	cache := hooks.NewAuthCache(60e9, nil)
	r, _ := ParseResponse([]byte(`{"ok":true,"username":"alice","acl":{"pub":["a/%c/#"],"sub":["b"]}}`))
	res := Result(r, info, cache)
	if res.Decision != auth.Allow || res.Username != "alice" || res.Rules == nil {
		t.Fatalf("%+v", res)
	}
	a := res.ACL(nil, "c")
	if !a.CanPublish("a/c/x") || a.CanPublish("a/d/x") {
		t.Error("the answer's ACL is not the connection's")
	}
	if got, ok := cache.Get(info); !ok || got.Username != "alice" {
		t.Error("allow not cached")
	}
	other := *info
	other.Password = []byte("q")
	if _, ok := cache.Get(&other); ok {
		t.Error("cache hit with another password")
	}
	r, _ = ParseResponse([]byte(`{"ok":false}`))
	if res := Result(r, &other, cache); res.Decision != auth.Deny || res.Reason != auth.BadCredentials {
		t.Errorf("refusal: %+v", res)
	}
	if _, ok := cache.Get(&other); ok {
		t.Error("refusal cached")
	}
	r, _ = ParseResponse([]byte(`{"ignore":true}`))
	if res := Result(r, info, nil); res.Decision != auth.NoOpinion {
		t.Errorf("ignore: %+v", res)
	}
	r, _ = ParseResponse([]byte(`{"ok":true,"acl":{"pub":["a/#/b"]}}`))
	if res := Result(r, info, nil); res.Decision != auth.Deny || res.Reason != auth.NotAuthorized {
		t.Errorf("invalid ACL: %+v", res)
	}
	r, _ = ParseResponse(nil)
	if res := Result(r, info, nil); res.Decision != auth.Deny {
		t.Errorf("empty body: %+v", res)
	}
}

// FuzzParseResponse: any body a service sends parses or fails cleanly,
// and an allow's ACL compiles or refuses.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{`{"ok":true}`, `{"ok":true,"acl":{"pub":["#"],"sub":["a/+"]}}`, `{"topic":"x","payload":"aGk=","extra":["y"]}`, `{"qos":3}`, ``, `null`} {
		f.Add([]byte(s))
	}
	info := &auth.ConnectInfo{ClientID: "c", Username: "u"}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResponse(data)
		if err != nil {
			return
		}
		res := Result(r, info, nil)
		if res.Decision == auth.Allow && r.ACL != nil && res.Rules == nil {
			t.Fatal("allowed with an ACL that was dropped")
		}
	})
}
