// Command coolpy7 runs the Coolpy7 MQTT broker.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/store/pebble"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "passwd" {
		os.Exit(runPasswd(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := config.Parse("coolpy7", args)
	if err != nil {
		if config.ExitOnHelp(err) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "coolpy7:", err)
		return 2
	}
	log := newLogger(cfg)
	if cfg.MaxProcs > 0 {
		// Before the broker is made: it sizes its event loops by it.
		runtime.GOMAXPROCS(cfg.MaxProcs)
	}
	if cfg.Repair {
		return repair(cfg, log)
	}
	srv, err := broker.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if cfg.PprofListen != "" {
		go func() {
			log.Info("pprof listening", "addr", cfg.PprofListen)
			if err := http.ListenAndServe(cfg.PprofListen, nil); err != nil {
				log.Error("pprof", "err", err)
			}
		}()
	}
	stopGateways, err := startGateways(cfg, srv, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		srv.Shutdown(context.Background())
		return 1
	}
	log.Info("coolpy7 started", "version", broker.Version)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	got := <-sig
	log.Info("shutting down", "signal", got.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopGateways(ctx)
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// repair salvages the store in cfg.DataDir (coolpy7 -repair) and reports
// what it kept and what it lost.
func repair(cfg config.Config, log *slog.Logger) int {
	o, err := broker.StoreOptions(cfg, log)
	if err != nil {
		log.Error("bad configuration", "err", err)
		return 2
	}
	r, err := pebble.Repair(cfg.DataDir, o)
	if err != nil {
		log.Error("repair failed", "dir", cfg.DataDir, "err", err)
		return 1
	}
	if r.Damaged == "" {
		log.Info("store is sound; nothing to repair", "dir", cfg.DataDir)
		return 0
	}
	log.Warn("store repaired", "dir", cfg.DataDir, "records kept", r.Copied, "damaged copy", r.Damaged)
	for _, l := range r.Lost {
		log.Warn("lost", "range", l)
	}
	return 0
}
