package loadgen

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// metric is one figure compared across brokers.
type metric struct {
	title  string
	unit   string
	higher bool // higher is better
	get    func(*Result) (float64, bool)
}

func brokerOK(r *Result) bool { return r.BrokerUsage != nil && r.BrokerUsage.Error == "" }

var (
	mConnRate = metric{"connect rate", "conn/s", true, func(r *Result) (float64, bool) {
		return r.Connect.PerS, r.Connect.PerS > 0
	}}
	mConnP99 = metric{"connect latency p99", "ms", false, func(r *Result) (float64, bool) {
		if r.Connect.LatencyMs == nil {
			return 0, false
		}
		return r.Connect.LatencyMs.P99, true
	}}
	mKBConn = metric{"broker memory per connection", "KB", false, func(r *Result) (float64, bool) {
		if !brokerOK(r) || r.Clients.Connected == 0 {
			return 0, false
		}
		return r.BrokerUsage.KBPerConn, true
	}}
	mDelivered = metric{"delivered", "msg/s", true, func(r *Result) (float64, bool) {
		if r.Messages == nil {
			return 0, false
		}
		return r.Messages.DeliveredPerS, true
	}}
	mOffered = metric{"sent", "msg/s", true, func(r *Result) (float64, bool) {
		if r.Messages == nil {
			return 0, false
		}
		return r.Messages.OfferedPerS, true
	}}
	mAcked = metric{"acked", "msg/s", true, func(r *Result) (float64, bool) {
		if r.Messages == nil || r.Options.QoS == 0 {
			return 0, false
		}
		return r.Messages.AckedPerS, true
	}}
	mLoss = metric{"loss", "%", false, func(r *Result) (float64, bool) {
		if r.Messages == nil || r.Messages.Expected == 0 {
			return 0, false
		}
		return r.Messages.LossPct, true
	}}
	mP50 = metric{"latency p50", "ms", false, func(r *Result) (float64, bool) {
		if r.Latency == nil {
			return 0, false
		}
		return r.Latency.P50, true
	}}
	mP99 = metric{"latency p99", "ms", false, func(r *Result) (float64, bool) {
		if r.Latency == nil {
			return 0, false
		}
		return r.Latency.P99, true
	}}
	mCPUPerM = metric{"broker CPU per million msgs", "cpu-s", false, func(r *Result) (float64, bool) {
		if !brokerOK(r) || r.BrokerUsage.CPUSecPerMillion == 0 {
			return 0, false
		}
		return r.BrokerUsage.CPUSecPerMillion, true
	}}
	mConnCPU = metric{"broker CPU per 1000 connects", "cpu-s", false, func(r *Result) (float64, bool) {
		if !brokerOK(r) || r.Clients.Connected == 0 {
			return 0, false
		}
		return r.BrokerUsage.ConnectCPUSec / (float64(r.Clients.Connected) / 1000), true
	}}
	mClientCPU = metric{"cp7bench CPU while measuring", "% of a core", false, func(r *Result) (float64, bool) {
		return r.Client.MeasureCPUPct, true
	}}
)

// metricsFor picks the figures that matter for a scenario.
func metricsFor(scenario string) []metric {
	switch scenario {
	case ScenarioConn:
		return []metric{mConnRate, mConnP99, mConnCPU}
	case ScenarioSub:
		return []metric{mKBConn, mConnRate, mConnCPU}
	case ScenarioPub:
		return []metric{mOffered, mAcked, mCPUPerM, mClientCPU}
	}
	return []metric{mDelivered, mOffered, mLoss, mP50, mP99, mCPUPerM, mClientCPU}
}

// LoadResults reads --json outputs.
func LoadResults(paths []string) ([]*Result, error) {
	var rs []*Result
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if r.Name == "" {
			r.Name = r.Scenario
		}
		if r.Broker == "" {
			r.Broker = strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		}
		rs = append(rs, &r)
	}
	return rs, nil
}

// comparison is the results arranged by scenario name and broker, both in
// order of first appearance.
type comparison struct {
	names   []string
	brokers []string
	by      map[[2]string]*Result
}

func arrange(rs []*Result) *comparison {
	c := &comparison{by: make(map[[2]string]*Result)}
	for _, r := range rs {
		if !slices.Contains(c.names, r.Name) {
			c.names = append(c.names, r.Name)
		}
		if !slices.Contains(c.brokers, r.Broker) {
			c.brokers = append(c.brokers, r.Broker)
		}
		c.by[[2]string{r.Name, r.Broker}] = r
	}
	return c
}

// first is any result of a scenario name, for its setup and metrics.
func (c *comparison) first(name string) *Result {
	for _, b := range c.brokers {
		if r := c.by[[2]string{name, b}]; r != nil {
			return r
		}
	}
	return nil
}

// WriteMarkdown writes a table of every scenario's figures per broker,
// with the ratio of base to each other broker.
func WriteMarkdown(w io.Writer, rs []*Result, base string) error {
	c := arrange(rs)
	if base == "" && len(c.brokers) > 0 {
		base = c.brokers[0]
	}
	var others []string
	for _, b := range c.brokers {
		if b != base {
			others = append(others, b)
		}
	}
	var sb strings.Builder
	sb.WriteString("| Scenario | Metric | " + strings.Join(c.brokers, " | ") + " |")
	for _, b := range others {
		fmt.Fprintf(&sb, " %s ÷ %s |", base, b)
	}
	sb.WriteString("\n|---|---|" + strings.Repeat("--:|", len(c.brokers)+len(others)) + "\n")
	for _, name := range c.names {
		for _, m := range metricsFor(c.first(name).Scenario) {
			dir := "↓"
			if m.higher {
				dir = "↑"
			}
			fmt.Fprintf(&sb, "| %s | %s (%s) %s |", name, m.title, m.unit, dir)
			vals := make(map[string]float64)
			for _, b := range c.brokers {
				r := c.by[[2]string{name, b}]
				if r == nil {
					sb.WriteString(" – |")
					continue
				}
				v, ok := m.get(r)
				if !ok {
					sb.WriteString(" – |")
					continue
				}
				vals[b] = v
				fmt.Fprintf(&sb, " %s |", number(v))
			}
			for _, b := range others {
				bv, ok1 := vals[base]
				ov, ok2 := vals[b]
				if !ok1 || !ok2 || ov == 0 {
					sb.WriteString(" – |")
					continue
				}
				fmt.Fprintf(&sb, " %.2f |", bv/ov)
			}
			sb.WriteString("\n")
		}
	}
	sb.WriteString("\n↑ higher is better, ↓ lower is better; a ratio is the first broker's figure divided by the other's.\n\nSetups:\n\n")
	for _, name := range c.names {
		r := c.first(name)
		fmt.Fprintf(&sb, "- **%s**: %s\n", name, describe(&r.Options))
	}
	var notes []string
	for _, name := range c.names {
		for _, b := range c.brokers {
			r := c.by[[2]string{name, b}]
			if r == nil {
				continue
			}
			if f := r.Clients.Failed + r.Clients.Dropped; f > 0 {
				notes = append(notes, fmt.Sprintf("- %s / %s: %d of %d clients failed or were lost (%s)", name, b, f, r.Clients.Target, topFailure(r.Failures)))
			}
			if r.Machine.OtherCPUPct > 30 {
				notes = append(notes, fmt.Sprintf("- %s / %s: %.0f%% of a core went to neither cp7bench nor the broker while measuring (other programs or kernel network work)", name, b, r.Machine.OtherCPUPct))
			}
			if r.Interrupted {
				notes = append(notes, fmt.Sprintf("- %s / %s: the run was interrupted", name, b))
			}
		}
	}
	if len(notes) > 0 {
		sb.WriteString("\nNotes:\n\n" + strings.Join(notes, "\n") + "\n")
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func topFailure(f map[string]int64) string {
	best, n := "no reason recorded", int64(0)
	for k, v := range f {
		if v > n || v == n && k < best {
			best, n = k, v
		}
	}
	return best
}

// number formats a figure with three significant digits or so.
func number(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a == 0:
		return "0"
	}
	return fmt.Sprintf("%.3f", v)
}

var unsafeFile = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// palette colours brokers in order of appearance.
var palette = []string{"#d9480f", "#1971c2", "#2f9e44", "#7048e8", "#e8590c", "#495057"}

// WriteCharts draws one SVG per scenario name into dir: a panel of
// horizontal bars per metric, one bar per broker. It returns the files.
func WriteCharts(dir string, rs []*Result) ([]string, error) {
	c := arrange(rs)
	var files []string
	for _, name := range c.names {
		svg := c.chart(name)
		path := filepath.Join(dir, unsafeFile.ReplaceAllString(name, "_")+".svg")
		if err := os.WriteFile(path, []byte(svg), 0o644); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

func (c *comparison) chart(name string) string {
	const (
		width  = 720
		left   = 130 // broker labels
		right  = 90  // value labels
		barH   = 18
		gap    = 6
		titleH = 52
	)
	ref := c.first(name)
	ms := metricsFor(ref.Scenario)
	panelH := 26 + len(c.brokers)*(barH+gap) + 10
	height := titleH + len(ms)*panelH + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", html.EscapeString(name))
	fmt.Fprintf(&b, `<text x="10" y="40" fill="#555">%s</text>`+"\n", html.EscapeString(describe(&ref.Options)))
	y := titleH
	for _, m := range ms {
		dir := "lower is better"
		if m.higher {
			dir = "higher is better"
		}
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s (%s)</text><text x="%d" y="%d" fill="#888" text-anchor="end">%s</text>`+"\n",
			y+14, html.EscapeString(m.title), html.EscapeString(m.unit), width-10, y+14, dir)
		top := 0.0
		vals := make([]float64, len(c.brokers))
		oks := make([]bool, len(c.brokers))
		for i, br := range c.brokers {
			if r := c.by[[2]string{name, br}]; r != nil {
				vals[i], oks[i] = m.get(r)
				if oks[i] {
					top = max(top, vals[i])
				}
			}
		}
		by := y + 24
		for i, br := range c.brokers {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-8, by+13, html.EscapeString(br))
			if !oks[i] {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#888">n/a</text>`+"\n", left, by+13)
				by += barH + gap
				continue
			}
			w := 0.0
			if top > 0 {
				w = float64(width-left-right) * vals[i] / top
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, left, by, max(w, 1), barH, palette[i%len(palette)])
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(left)+max(w, 1)+6, by+13, number(vals[i]))
			by += barH + gap
		}
		y += panelH
	}
	b.WriteString("</svg>\n")
	return b.String()
}
