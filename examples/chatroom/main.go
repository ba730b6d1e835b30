// Command chatroom runs the Coolpy7 chat-room demo: a broker with MQTT over
// WebSocket, and the page, built from src/chat.js with MQTT.js. From the
// repository root, after `cd examples/chatroom && npm ci && npm run build`:
//
//	go run ./examples/chatroom
//
// then open http://localhost:8080 in two browser windows.
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
)

// The page is embedded so that the command runs from any directory; `go
// run` rebuilds it after each `npm run build`.
//
//go:embed public
var public embed.FS

func main() {
	httpAddr := flag.String("http", ":8080", "`address` to serve the page on")
	wsAddr := flag.String("ws", ":8083", "MQTT over WebSocket `address` the page connects to")
	mqttAddr := flag.String("mqtt", ":1883", "MQTT TCP `address`, for command-line clients; empty is off")
	flag.Parse()
	if err := run(*httpAddr, *wsAddr, *mqttAddr); err != nil {
		fmt.Fprintln(os.Stderr, "chatroom:", err)
		os.Exit(1)
	}
}

func run(httpAddr, wsAddr, mqttAddr string) error {
	page, err := fs.Sub(public, "public")
	if err != nil {
		return err
	}
	if _, err := fs.Stat(page, "chat.js"); err != nil {
		return fmt.Errorf("the page is not built: run `npm ci && npm run build` in examples/chatroom first")
	}
	cfg := config.Default()
	cfg.Listen, cfg.WSListen = mqttAddr, wsAddr
	cfg.DataDir = "" // a demo: nothing kept between runs
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := broker.New(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: http.FileServerFS(page), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	log.Info("chat room ready", "open", "http://localhost:"+port)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
	return srv.Shutdown(ctx)
}
