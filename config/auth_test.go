package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuthFlags: the original's flags and the new keys reach AuthConfig,
// flags over the file.
func TestAuthFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(file, []byte("password_file = \"/p\"\nping_limit = 3\nhook_down = \"allow\"\n"), 0o600)
	c, err := Parse("coolpy7", []string{"-c", file, "-as", "1", "-jsk", "s", "-pl", "5", "-psl", "200", "-dt", "60",
		"-acl", "/a", "-cr", "2.5", "-cb", "4", "-anon", "-jwtaud", "cp7", "-hookt", "500",
		"-lfl", "3", "-lfb", "10"})
	if err != nil {
		t.Fatal(err)
	}
	a := c.AuthConfig
	if a.AuthMode != 1 || a.JWTSecret != "s" || a.PingLimit != 5 || a.PublishLimitMs != 200 || a.BanSeconds != 60 ||
		a.ACLFile != "/a" || a.ConnectRate != 2.5 || a.ConnectBurst != 4 || !a.AllowAnonymous || a.JWTAudience != "cp7" ||
		a.HookTimeoutMs != 500 || a.PasswordFile != "/p" || a.HookDown != "allow" ||
		a.LoginFailLimit != 3 || a.LoginFailWindow != 60 || a.LoginFailBan != 10 {
		t.Errorf("%+v", a)
	}
	if d := Default(); d.HookTimeoutMs != 2000 || d.HookCacheSeconds != 60 || d.AuthOn() ||
		d.LoginFailLimit != 5 || d.LoginFailWindow != 60 || d.LoginFailBan != 1800 {
		t.Errorf("defaults %+v", d.AuthConfig)
	}
}

func TestAuthValidate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-as", "1"}, "needs jwt_secret"},
		{[]string{"-as", "3"}, "auth_mode 3"},
		{[]string{"-ha", "x:1"}, "only used with auth_mode 2"},
		{[]string{"-hookdown", "maybe"}, "hook_down"},
		{[]string{"-webhook", "ftp://x"}, "webhook_url"},
		{[]string{"-psl", "-1"}, "must not be negative"},
		{[]string{"-lfw", "-1"}, "login_fail_window"},
	} {
		_, err := Parse("coolpy7", tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error about %q", tc.args, err, tc.want)
		}
	}
	if _, err := Parse("coolpy7", []string{"-as", "2"}); err != nil {
		t.Errorf("-as 2 alone (extend service at its default address): %v", err)
	}
}
