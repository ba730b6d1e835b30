package main

import (
	"context"
	"log/slog"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/coapgw"
	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/gateway"
	"github.com/coolpy7/coolpy7/httpapi"
)

// startGateways starts the CoAP gateway and the HTTP server, and returns
// what stops them.
//
// Until the broker authenticates MQTT clients (issue 6 gives
// broker.Server.Authorize and Server.Bans), the gateways get the same as
// MQTT: everyone allowed, every topic open, no ban list.
func startGateways(cfg config.Config, srv *broker.Server, log *slog.Logger) (stop func(context.Context), err error) {
	chain := auth.NewChain(auth.Options{})
	var authorize gateway.Authorizer = func(ctx context.Context, info *auth.ConnectInfo) (auth.Result, acl.ACL) {
		return chain.Authenticate(ctx, info), acl.AllowAll()
	}
	var stops []func(context.Context)
	stop = func(ctx context.Context) {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i](ctx)
		}
		chain.Close()
	}
	pubs := map[string]*gateway.Publisher{}
	if cfg.CoAPListen != "" || cfg.CoAPDTLSListen != "" {
		cg, err := coapgw.New(coapgw.Options{Broker: srv, Config: cfg, Authorize: authorize, Log: log})
		if err != nil {
			return stop, err
		}
		if err := cg.Start(); err != nil {
			return stop, err
		}
		stops = append(stops, func(context.Context) { cg.Stop() })
		pubs["coap"] = cg.Publisher()
	}
	if cfg.HTTPListen != "" {
		hs, err := httpapi.New(httpapi.Options{Broker: srv, Config: cfg, Authorize: authorize, Publishers: pubs, Log: log})
		if err != nil {
			stop(context.Background())
			return stop, err
		}
		if err := hs.Start(); err != nil {
			stop(context.Background())
			return stop, err
		}
		stops = append(stops, func(ctx context.Context) { hs.Shutdown(ctx) })
	}
	return stop, nil
}
