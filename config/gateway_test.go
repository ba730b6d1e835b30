package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGatewayKeysInFileAndFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte("http_listen = \"127.0.0.1:9\"\nadmin_password = \"pw\"\nhttp_cors_origins = [\"https://a\"]\n"), 0o600)
	c, err := Parse("t", []string{"-c", path, "-cl", "", "-sysl", "7", "-cors", "https://b, https://c"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPListen != "127.0.0.1:9" || c.AdminPassword != "pw" || c.CoAPListen != "" || c.HTTPRateLimit != 7 ||
		len(c.HTTPCORSOrigins) != 2 || c.HTTPCORSOrigins[1] != "https://c" {
		t.Fatalf("got %+v", c.Gateway)
	}
	if _, err := Parse("t", []string{"-cdtls", ":5684"}); err == nil {
		t.Fatal("DTLS without a key or PSK accepted")
	}
}
