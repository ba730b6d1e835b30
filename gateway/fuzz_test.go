package gateway

import (
	"encoding/base64"
	"strings"
	"testing"
)

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"topic":"a/b","payload":"x","qos":1,"retain":true}`, `{"topic":"a","payload":"AAE=","encoding":"base64"}`,
		`{"topic":"a","qos":3}`, `{"topic":`, `{} {}`, `{"topic":"a","x":1}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeJSON(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("untyped error %T", err)
			}
			return
		}
		if m.Topic == "" || m.QoS > 2 {
			t.Fatalf("accepted %+v", m)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{`[{"topic":"a","payload":"x"},{"topic":"b","qos":2}]`, `[]`, `[{}]`, `[{"topic":"a"}] x`, `{"topic":"a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := DecodeBatch(b, 10)
		if err != nil {
			return
		}
		if len(ms) == 0 || len(ms) > 10 {
			t.Fatalf("%d messages", len(ms))
		}
		for _, m := range ms {
			if m.Topic == "" || m.QoS > 2 {
				t.Fatalf("accepted %+v", m)
			}
		}
	})
}

func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{"", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p")), "Basic a.b.c", "Bearer x", "Basic", "basic  dTp2 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseBasic(h)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Kind != Unauthorized {
				t.Fatalf("error %v", err)
			}
			return
		}
		if h == "" && (c.Username != "" || c.Password != nil) {
			t.Fatal("credentials from nothing")
		}
	})
}

func FuzzParseRawQuery(f *testing.F) {
	for _, s := range []string{"topic=a/+&qos=1", "a=%zz", "&&=&x", "topic=a%2Fb&retain=true", "k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseRawQuery(raw)
		if err != nil {
			return
		}
		// Whatever parses, the publish parameters either parse or are
		// refused with a typed error.
		if _, m, err := ParseQuery(q, false); err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("untyped error %T", err)
			}
		} else if m.QoS > 2 {
			t.Fatalf("qos %d", m.QoS)
		}
		// '+' is never read as a space: without escapes and spaces in the
		// input, no value holds a space.
		if !strings.ContainsAny(raw, "% ") {
			for _, vs := range q {
				for _, v := range vs {
					if strings.Contains(v, " ") {
						t.Fatalf("+ read as a space in %q", raw)
					}
				}
			}
		}
	})
}
