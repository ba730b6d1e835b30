package e2e

import (
	"net"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coolpy7/coolpy7/config"
)

// login3From logs a 3.1.1 client in from a source address of its own (the
// loopback /8 is all local), returning the CONNACK return code.
func login3From(t *testing.T, addr, src, user, pass string) byte {
	t.Helper()
	_, tok, _ := dial3(t, addr, uniqueID("lf"), true, func(o *mqtt.ClientOptions) {
		o.SetDialer(&net.Dialer{Timeout: waitTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}})
		o.SetUsername(user)
		o.SetPassword(pass)
	})
	return tok.ReturnCode()
}

// TestLoginFailureBan: the original's ipblocker. Five bad passwords from
// one address ban it: the sixth attempt is refused as banned even with the
// right password, for 5.0 (0x8A) and 3.1.1 (5), until the ban lapses;
// other addresses are unaffected, and a success resets an address's count.
func TestLoginFailureBan(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) {
		c.PasswordFile = passwordFile(t, map[string]string{"alice": "secret"})
		c.LoginFailLimit, c.LoginFailWindow, c.LoginFailBan = 5, 60, 1
	})
	for i := range 5 {
		if _, rc := login5(t, addr, cp5(uniqueID("lf")), "alice", "wrong"); rc != 0x86 {
			t.Fatalf("bad password %d: reason %#x, want 0x86", i+1, rc)
		}
	}
	banned := time.Now()
	if _, rc := login5(t, addr, cp5(uniqueID("lf")), "alice", "secret"); rc != 0x8A {
		t.Errorf("5.0 right password after 5 failures: reason %#x, want 0x8A (banned)", rc)
	}
	if rc := login3From(t, addr, "127.0.0.1", "alice", "secret"); rc != 5 {
		t.Errorf("3.1.1 right password from the banned address: return code %d, want 5", rc)
	}
	if rc := login3From(t, addr, "127.0.0.2", "alice", "secret"); rc != 0 {
		t.Errorf("3.1.1 from another address: return code %d, want 0", rc)
	}

	// 3.1.1 failures count the same way; a success in between resets.
	for i := range 4 {
		if rc := login3From(t, addr, "127.0.0.3", "alice", "wrong"); rc != 4 {
			t.Fatalf("3.1.1 bad password %d: return code %d, want 4", i+1, rc)
		}
	}
	if rc := login3From(t, addr, "127.0.0.3", "alice", "secret"); rc != 0 {
		t.Fatalf("3.1.1 right password after 4 failures: return code %d, want 0", rc)
	}
	for i := range 4 {
		if rc := login3From(t, addr, "127.0.0.3", "alice", "wrong"); rc != 4 {
			t.Fatalf("3.1.1 bad password %d after a success: return code %d, want 4 (count not reset)", i+1, rc)
		}
	}
	if rc := login3From(t, addr, "127.0.0.3", "", ""); rc != 5 {
		t.Fatalf("3.1.1 no credentials, the 5th failure: return code %d, want 5 (not authorized)", rc)
	}
	if rc := login3From(t, addr, "127.0.0.3", "alice", "secret"); rc != 5 {
		t.Errorf("3.1.1 right password after 5 failures: return code %d, want 5 (banned)", rc)
	}

	// The ban lapses after login_fail_ban.
	time.Sleep(time.Until(banned.Add(1100 * time.Millisecond)))
	if _, rc := login5(t, addr, cp5(uniqueID("lf")), "alice", "secret"); rc != 0 {
		t.Errorf("5.0 right password after the ban lapsed: reason %#x, want 0", rc)
	}
}
