package transport_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coolpy7/coolpy7/config"
)

// TestListenerSettings reads the listeners' settings from flags and from
// the config file, and refuses the combinations that cannot work.
func TestListenerSettings(t *testing.T) {
	c, err := config.Parse("coolpy7", []string{"-l", "", "-tls", ":8883", "-ws", "127.0.0.1:8083", "-wss", ":8084",
		"-tlscert", "s.pem", "-tlskey", "s.key", "-tlsauth", "optional", "-tlsca", "ca.pem",
		"-wsorigins", "https://a.example, http://b.example:8080"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "" || c.TLSListen != ":8883" || c.WSListen != "127.0.0.1:8083" || c.WSSListen != ":8084" ||
		c.TLSCert != "s.pem" || c.TLSKey != "s.key" || c.TLSClientAuth != "optional" || c.TLSClientCA != "ca.pem" ||
		!slices.Equal(c.WSOrigins, []string{"https://a.example", "http://b.example:8080"}) {
		t.Fatalf("flags parsed into %+v", c)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	toml := `tls_listen = ":8883"
ws_listen = ":8083"
wss_listen = ":8084"
tls_cert = "s.pem"
tls_key = "s.key"
tls_client_auth = "require"
tls_client_ca = "ca.pem"
ws_origins = ["https://a.example"]
`
	if err := os.WriteFile(file, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = config.Parse("coolpy7", []string{"-c", file, "-ws", ":9083"})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLSListen != ":8883" || c.WSListen != ":9083" || c.TLSClientAuth != "require" || len(c.WSOrigins) != 1 {
		t.Fatalf("file parsed into %+v", c)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-tls", ":8883"}, "tls_cert"},
		{[]string{"-wss", ":8084", "-tlscert", "s.pem"}, "tls_key"},
		{[]string{"-tlsauth", "require"}, "needs tls_client_ca"},
		{[]string{"-tlsca", "ca.pem"}, "needs tls_client_auth"},
		{[]string{"-tlsauth", "maybe", "-tlsca", "ca.pem"}, "want none, optional or require"},
	} {
		if _, err := config.Parse("coolpy7", tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
