package config

import (
	"flag"
	"fmt"
	"strings"
)

// Gateway holds the settings of the HTTP server (publish, admin API,
// metrics) and the CoAP gateway. It is embedded in Config, so its keys sit
// at the top level of the config file like every other.
type Gateway struct {
	// HTTPListen is the HTTP address (-hl) of POST /pub, /sys, /brokers,
	// the admin API under /api/, /metrics, /healthz and /readyz. Empty
	// turns it off.
	HTTPListen string `toml:"http_listen"`
	// HTTPRateLimit is how many requests a second /sys, /brokers and the
	// admin API take, from all callers together (-sysl); 0 is no limit.
	// Publishing is not limited by it.
	HTTPRateLimit int `toml:"http_rate_limit"`
	// HTTPCORSOrigins are the origins browsers may call the HTTP server
	// from; "*" allows any, empty sends no CORS headers.
	HTTPCORSOrigins []string `toml:"http_cors_origins"`
	// SysToken, when set, lets ?token= open /sys and /brokers (-syst);
	// an admin bearer token always does.
	SysToken string `toml:"sys_token"`
	// AdminUser and AdminPassword log in to the admin API. Without a
	// password one is generated at first start, printed once, and only its
	// bcrypt hash kept in data_dir.
	AdminUser     string `toml:"admin_user"`
	AdminPassword string `toml:"admin_password"`
	// CoAPListen is the UDP address of the CoAP gateway (-cl); the
	// original's default shares the MQTT port number, which does not clash
	// because one is UDP and the other TCP. Empty turns it off.
	CoAPListen string `toml:"coap_listen"`
	// CoAPDTLSListen is the UDP address of CoAP over DTLS (-cdtls), with
	// a certificate (CoAPDTLSCert, CoAPDTLSKey) or a pre-shared key
	// (CoAPDTLSPSK, the identity clients send in CoAPDTLSPSKIdentity).
	CoAPDTLSListen      string `toml:"coap_dtls_listen"`
	CoAPDTLSCert        string `toml:"coap_dtls_cert"`
	CoAPDTLSKey         string `toml:"coap_dtls_key"`
	CoAPDTLSPSK         string `toml:"coap_dtls_psk"`
	CoAPDTLSPSKIdentity string `toml:"coap_dtls_psk_identity"`
}

func defaultGateway() Gateway {
	return Gateway{HTTPListen: ":8081", HTTPRateLimit: 5, AdminUser: "admin", CoAPListen: ":1883"}
}

func (g *Gateway) validate() error {
	switch {
	case g.HTTPRateLimit < 0:
		return fmt.Errorf("http_rate_limit must not be negative")
	case g.AdminUser == "":
		return fmt.Errorf("admin_user must not be empty")
	case g.CoAPDTLSListen != "" && (g.CoAPDTLSCert == "") != (g.CoAPDTLSKey == ""):
		return fmt.Errorf("coap_dtls_cert and coap_dtls_key go together")
	case g.CoAPDTLSListen != "" && g.CoAPDTLSCert == "" && g.CoAPDTLSPSK == "":
		return fmt.Errorf("coap_dtls_listen needs coap_dtls_cert and coap_dtls_key, or coap_dtls_psk")
	}
	return nil
}

// gatewayFlags binds the gateway's flags to f and returns a function that
// copies those given on the command line into c.
func gatewayFlags(fs *flag.FlagSet, d, f *Gateway) func(name string, c *Gateway) {
	fs.StringVar(&f.HTTPListen, "hl", d.HTTPListen, "HTTP `address` of publish, admin API and metrics; empty is off")
	fs.IntVar(&f.HTTPRateLimit, "sysl", d.HTTPRateLimit, "requests per second of /sys, /brokers and the admin API; 0 is no limit")
	fs.StringVar(&f.SysToken, "syst", d.SysToken, "`token` that opens /sys and /brokers (?token=); empty: admin bearer token only")
	cors := fs.String("cors", "", "comma-separated `origins` allowed to call the HTTP server from browsers; * for any")
	fs.StringVar(&f.CoAPListen, "cl", d.CoAPListen, "CoAP UDP `address`; empty is off")
	fs.StringVar(&f.CoAPDTLSListen, "cdtls", d.CoAPDTLSListen, "CoAP over DTLS UDP `address`; empty is off")
	return func(name string, c *Gateway) {
		switch name {
		case "hl":
			c.HTTPListen = f.HTTPListen
		case "sysl":
			c.HTTPRateLimit = f.HTTPRateLimit
		case "syst":
			c.SysToken = f.SysToken
		case "cors":
			c.HTTPCORSOrigins = nil
			for o := range strings.SplitSeq(*cors, ",") {
				if o = strings.TrimSpace(o); o != "" {
					c.HTTPCORSOrigins = append(c.HTTPCORSOrigins, o)
				}
			}
		case "cl":
			c.CoAPListen = f.CoAPListen
		case "cdtls":
			c.CoAPDTLSListen = f.CoAPDTLSListen
		}
	}
}
