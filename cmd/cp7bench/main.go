// Command cp7bench is Coolpy7's MQTT load generator, modelled on
// emqtt-bench: it opens connections, subscribes and publishes, and reports
// rates, loss and latency. Run `cp7bench help` for the commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coolpy7/coolpy7/loadgen"
)

const usage = `Usage: cp7bench <command> [flags]

MQTT load generator for Coolpy7 (and any MQTT 3.1/3.1.1/5.0 broker).

Commands:
  conn     open and hold -c connections; connects/s and failures by reason
  sub      -c subscribers to -t; received/s and latency (p50/p90/p99/max)
           from the timestamp cp7bench publishers put in the payload
  pub      -c publishers to -t, one message per -I each or flat out (-I 0);
           sent/s, and acks/s with an inflight window for QoS 1 and 2
  p2p      -c publisher/subscriber pairs, a topic per pair
  fanout   --pubs publishers to -c subscribers of one topic
  fanin    -c publishers, each on its own topic, to --subs subscribers of
           a wildcard filter
  chart    draw an SVG chart per scenario and a markdown table from the
           JSON results of --json runs
  help     show this text

p2p, fanout and fanin start their subscribers first and report offered and
delivered rates, loss and latency percentiles. Runs end after --duration
(10s by default; 0 runs until interrupted). Clients beyond one process's
socket limit are spread over worker processes and 127.0.0.x source
addresses automatically.

Run 'cp7bench <command> -help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; stdout is a parameter so that tests read the
// JSON summary, and the progress line only appears when it is a terminal.
func run(args []string, stdout *os.File, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd := args[0]; cmd {
	case loadgen.WorkerArg:
		// The parent handles Ctrl-C for the whole process group and stops
		// its workers itself, so that they report before exiting.
		signal.Ignore(os.Interrupt)
		if err := loadgen.ServeWorker(os.Stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "cp7bench worker:", err)
			return 1
		}
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "chart":
		return chartCmd(args[1:], stdout, stderr)
	case loadgen.ScenarioConn, loadgen.ScenarioSub, loadgen.ScenarioPub,
		loadgen.ScenarioP2P, loadgen.ScenarioFanout, loadgen.ScenarioFanin:
		return bench(cmd, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "cp7bench: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// bench parses a scenario's flags and runs it.
func bench(scenario string, args []string, stdout *os.File, stderr io.Writer) int {
	o, cpuProfile, err := parseFlags(scenario, args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "cp7bench:", err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "cp7bench:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "cp7bench:", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}

	summary := io.Writer(stdout)
	if o.JSON {
		summary = stderr
	}
	var progress io.Writer
	if !o.Quiet && isTerminal(stdout) {
		progress = summary
	}
	res, err := loadgen.Run(ctx, o, exe, progress)
	if err != nil {
		fmt.Fprintln(stderr, "cp7bench:", err)
		return 1
	}
	if !o.Quiet {
		res.WriteText(summary)
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "cp7bench:", err)
			return 1
		}
	}
	return 0
}

// parseFlags reads the shared flags and the scenario's own.
func parseFlags(scenario string, args []string, out io.Writer) (loadgen.Options, *string, error) {
	o := loadgen.DefaultOptions(scenario)
	fs := flag.NewFlagSet("cp7bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(out)
	cpuProfile := fs.String("cpuprofile", "", "write cp7bench's own CPU profile (of this process) to `file`")

	fs.StringVar(&o.Host, "h", o.Host, "broker `host`")
	fs.IntVar(&o.Port, "p", o.Port, "broker `port`")
	version := fs.Int("V", int(o.Version), "MQTT `version`: 3 (3.1), 4 (3.1.1) or 5 (5.0)")
	fs.IntVar(&o.Clients, "c", o.Clients, map[string]string{
		loadgen.ScenarioConn:   "`count` of connections",
		loadgen.ScenarioSub:    "`count` of subscribers",
		loadgen.ScenarioPub:    "`count` of publishers",
		loadgen.ScenarioP2P:    "`count` of publisher/subscriber pairs",
		loadgen.ScenarioFanout: "`count` of subscribers",
		loadgen.ScenarioFanin:  "`count` of publishers",
	}[scenario])
	fs.Float64Var(&o.ConnRate, "R", o.ConnRate, "connect `rate` per second over all clients; 0 uses -i")
	fs.Var(durFlag{&o.ConnInterval, time.Millisecond}, "i", "connect `interval` between two clients (ms, or a duration like 500us); 0 with -R 0 connects as fast as --max-connecting allows")
	fs.StringVar(&o.Topic, "t", o.Topic, "`topic`; %i is the client's index (from 1), %c its client ID")
	qos := fs.Int("q", int(o.QoS), "`QoS` of publishes and subscriptions")
	fs.IntVar(&o.Size, "s", o.Size, "payload `bytes` (at least 8: the send timestamp)")
	fs.StringVar(&o.Username, "u", "", "user `name`")
	fs.StringVar(&o.Password, "P", "", "`password`")
	fs.BoolVar(&o.WS, "ws", false, "connect over WebSocket")
	fs.StringVar(&o.WSPath, "ws-path", o.WSPath, "WebSocket `path`")
	fs.BoolVar(&o.TLS, "tls", false, "connect over TLS (the server certificate is not verified)")
	fs.IntVar(&o.KeepAlive, "k", o.KeepAlive, "keepalive `seconds`")
	fs.Var(durFlag{&o.Duration, time.Second}, "duration", "how long to publish (conn and sub: to hold once connected), in `seconds` or a duration; 0 runs until interrupted")
	fs.StringVar(&o.Prefix, "prefix", o.Prefix, "client ID `prefix`")
	ifaddr := fs.String("ifaddr", "", "comma-separated source `addresses` to bind, round-robin (default: enough 127.0.0.x for a loopback broker)")
	fs.IntVar(&o.ConnsPerProc, "conns-per-proc", o.ConnsPerProc, "most `sockets` one process holds; more clients go to worker processes")
	fs.IntVar(&o.MaxConnecting, "max-connecting", o.MaxConnecting, "most `clients` between dial and CONNACK (SUBACK) at once")
	fs.Var(durFlag{&o.ConnectTimeout, time.Second}, "connect-timeout", "give up on a client not connected (and subscribed) after this many `seconds`")
	fs.IntVar(&o.RSSPid, "rss-pid", 0, "broker `pid` to sample RSS and CPU of from /proc")
	fs.BoolVar(&o.Quiet, "quiet", false, "no progress line or text summary")
	fs.BoolVar(&o.JSON, "json", false, "print a JSON summary on stdout (the text summary goes to stderr)")
	fs.StringVar(&o.Name, "name", "", "scenario `label` for the JSON summary and charts")
	fs.StringVar(&o.Broker, "broker", "", "broker `label` for the JSON summary and charts")
	if o.Roles().Subs > 0 {
		fs.BoolVar(&o.Persistent, "persistent", false, "subscribers keep persistent sessions (clean session false; v5 session expiry 1 h)")
	}

	if o.Roles().Pubs > 0 {
		flat := "0 is flat out"
		if scenario == loadgen.ScenarioP2P {
			flat = "0 is flat out, each pair keeping --inflight messages in flight end to end"
		}
		fs.Var(durFlag{&o.Interval, time.Millisecond}, "I", "publish `interval` per publisher (ms, or a duration like 100us); "+flat)
		fs.IntVar(&o.Inflight, "inflight", o.Inflight, "QoS 1/2 `window`: unacknowledged publishes per publisher")
		fs.BoolVar(&o.Retain, "retain", false, "publish retained")
	}
	switch scenario {
	case loadgen.ScenarioPub:
		fs.StringVar(&o.Via, "via", o.Via, "how publishers reach the broker: mqtt (http and coap are not built yet)")
	case loadgen.ScenarioFanout:
		fs.IntVar(&o.Pubs, "pubs", o.Pubs, "`count` of publishers")
	case loadgen.ScenarioFanin:
		fs.IntVar(&o.Subs, "subs", o.Subs, "`count` of subscribers")
		fs.StringVar(&o.SubTopic, "sub-topic", o.SubTopic, "subscribers' topic `filter`")
	}
	if o.Scenario == loadgen.ScenarioP2P || o.Scenario == loadgen.ScenarioFanout || o.Scenario == loadgen.ScenarioFanin {
		fs.Var(durFlag{&o.Drain, time.Second}, "drain", "longest wait, in `seconds` or a duration, for messages in flight once publishing stops")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cp7bench %s [flags]\n\nFlags:\n", scenario)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, cpuProfile, err
	}
	if fs.NArg() > 0 {
		return o, cpuProfile, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *version < 3 || *version > 5 || *qos < 0 || *qos > 2 {
		return o, cpuProfile, errors.New("-V must be 3, 4 or 5 and -q 0, 1 or 2")
	}
	o.Version, o.QoS = byte(*version), byte(*qos)
	if *ifaddr != "" {
		o.IfAddrs = strings.Split(*ifaddr, ",")
	}
	return o, cpuProfile, o.Validate()
}

// durFlag is a duration flag that also takes a bare number in unit, as
// emqtt-bench's millisecond intervals.
type durFlag struct {
	d    *time.Duration
	unit time.Duration
}

func (f durFlag) Set(s string) error {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		*f.d = time.Duration(n * float64(f.unit))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a number or a duration like 10ms: %q", s)
	}
	*f.d = d
	return nil
}

func (f durFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

// isTerminal reports whether f is a terminal, the only place a progress
// line rewritten in place makes sense.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
