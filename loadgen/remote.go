package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// WorkerArg is the hidden first argument that makes cp7bench a worker
// process: it reads a WorkerSpec and commands as JSON lines on stdin and
// answers with JSON lines on stdout.
const WorkerArg = "__worker"

// handle is how the runner drives a worker, in this process or a child.
type handle interface {
	connect(ctx context.Context, role byte) error
	publish(ctx context.Context, start, end time.Time) error
	endPublish()
	stats() Stats
	stop() (Stats, error)
}

// local runs the worker in this process.
type local struct{ w *Worker }

func (l local) connect(ctx context.Context, role byte) error {
	l.w.Connect(ctx, role)
	return nil
}

func (l local) publish(ctx context.Context, start, end time.Time) error {
	l.w.Publish(ctx, start, end)
	return nil
}

func (l local) endPublish()          { l.w.EndPublish() }
func (l local) stats() Stats         { return l.w.Stats() }
func (l local) stop() (Stats, error) { return l.w.Stop(), nil }

// command is a parent-to-worker message.
type command struct {
	Cmd   string `json:"cmd"` // connect, publish, endpub, stop
	Role  byte   `json:"role,omitempty"`
	Start int64  `json:"start,omitempty"` // unix ns
	End   int64  `json:"end,omitempty"`   // unix ns, 0 for until endpub
}

// event is a worker-to-parent message.
type event struct {
	Ev    string `json:"ev"` // stats, done, final, error
	Cmd   string `json:"cmd,omitempty"`
	Stats *Stats `json:"stats,omitempty"`
	Err   string `json:"err,omitempty"`
}

// remote drives a worker child process.
type remote struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	inMu sync.Mutex

	mu     sync.Mutex
	latest Stats
	done   map[string]chan struct{} // a channel per command awaiting "done"
	final  chan Stats
	exited chan struct{}
	err    error
}

// spawn starts a worker process running exe.
func spawn(exe string, spec WorkerSpec) (*remote, error) {
	cmd := exec.Command(exe, WorkerArg)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &remote{
		cmd:    cmd,
		in:     in,
		done:   map[string]chan struct{}{"connect": make(chan struct{}, 1), "publish": make(chan struct{}, 1)},
		final:  make(chan Stats, 1),
		exited: make(chan struct{}),
	}
	go r.read(out)
	if err := r.send(spec); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	return r, nil
}

func (r *remote) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.inMu.Lock()
	defer r.inMu.Unlock()
	_, err = r.in.Write(append(b, '\n'))
	return err
}

// read dispatches the worker's events until its stdout closes.
func (r *remote) read(out io.Reader) {
	defer close(r.exited)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			r.setErr(fmt.Errorf("worker %d: bad message: %w", r.cmd.Process.Pid, err))
			continue
		}
		switch ev.Ev {
		case "stats":
			r.mu.Lock()
			r.latest = *ev.Stats
			r.mu.Unlock()
		case "done":
			if ch, ok := r.done[ev.Cmd]; ok {
				ch <- struct{}{}
			}
		case "final":
			r.final <- *ev.Stats
		case "error":
			r.setErr(fmt.Errorf("worker %d: %s", r.cmd.Process.Pid, ev.Err))
		}
	}
	if err := sc.Err(); err != nil {
		r.setErr(err)
	}
}

func (r *remote) setErr(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

func (r *remote) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	return errors.New("worker process exited early")
}

// await waits for the worker to report command name done.
func (r *remote) await(ctx context.Context, name string) error {
	select {
	case <-r.done[name]:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.exited:
		return r.failed()
	}
}

func (r *remote) connect(ctx context.Context, role byte) error {
	if err := r.send(command{Cmd: "connect", Role: role}); err != nil {
		return err
	}
	return r.await(ctx, "connect")
}

func (r *remote) publish(ctx context.Context, start, end time.Time) error {
	c := command{Cmd: "publish", Start: start.UnixNano()}
	if !end.IsZero() {
		c.End = end.UnixNano()
	}
	if err := r.send(c); err != nil {
		return err
	}
	return r.await(ctx, "publish")
}

func (r *remote) endPublish() { _ = r.send(command{Cmd: "endpub"}) }

func (r *remote) stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest
}

// stop asks the worker for its final counts and waits for it to exit.
func (r *remote) stop() (Stats, error) {
	_ = r.send(command{Cmd: "stop"})
	var st Stats
	var err error
	select {
	case st = <-r.final:
	case <-r.exited:
		err = r.failed()
	case <-time.After(30 * time.Second):
		err = errors.New("worker did not stop in time")
		_ = r.cmd.Process.Kill()
	}
	_ = r.in.Close()
	_ = r.cmd.Wait()
	return st, err
}

// ServeWorker is the worker process's main loop: it runs the WorkerSpec
// read first from in and then the parent's commands, reporting on out. It
// returns when told to stop or when in closes (the parent went away).
func ServeWorker(in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(in)
	var spec WorkerSpec
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("reading worker spec: %w", err)
	}
	w := NewWorker(spec)
	var outMu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(ev event) {
		outMu.Lock()
		_ = enc.Encode(ev)
		outMu.Unlock()
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	go func() {
		for {
			select {
			case <-w.ctx.Done():
				return
			case <-tick.C:
				st := w.Stats()
				emit(event{Ev: "stats", Stats: &st})
			}
		}
	}()
	for {
		var c command
		if err := dec.Decode(&c); err != nil {
			w.Stop()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch c.Cmd {
		case "connect":
			go func() {
				w.Connect(w.ctx, c.Role)
				st := w.Stats()
				emit(event{Ev: "stats", Stats: &st})
				emit(event{Ev: "done", Cmd: "connect"})
			}()
		case "publish":
			var end time.Time
			if c.End != 0 {
				end = time.Unix(0, c.End)
			}
			go func() {
				w.Publish(w.ctx, time.Unix(0, c.Start), end)
				emit(event{Ev: "done", Cmd: "publish"})
			}()
		case "endpub":
			w.EndPublish()
		case "stop":
			st := w.Stop()
			emit(event{Ev: "final", Stats: &st})
			return nil
		default:
			emit(event{Ev: "error", Err: "unknown command " + c.Cmd})
		}
	}
}
