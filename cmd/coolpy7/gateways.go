package main

import (
	"context"
	"log/slog"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/coapgw"
	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/gateway"
	"github.com/coolpy7/coolpy7/httpapi"
)

// startGateways starts the CoAP gateway and the HTTP server, which
// authenticate publishers with the broker's own chain and ACL
// (Server.Authorize) and list and lift its bans, and returns what stops
// them.
func startGateways(cfg config.Config, srv *broker.Server, log *slog.Logger) (stop func(context.Context), err error) {
	var stops []func(context.Context)
	stop = func(ctx context.Context) {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i](ctx)
		}
	}
	pubs := map[string]*gateway.Publisher{}
	if cfg.CoAPListen != "" || cfg.CoAPDTLSListen != "" {
		cg, err := coapgw.New(coapgw.Options{Broker: srv, Config: cfg, Authorize: srv.AuthorizeSpoofable, Log: log})
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
		hs, err := httpapi.New(httpapi.Options{Broker: srv, Config: cfg, Authorize: srv.Authorize, Bans: srv.Bans(), Publishers: pubs, Log: log})
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
