package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports; the kernel scales to it
// whatever its internal HZ, which is why it is not read with sysconf.
const clockTicks = 100

// ProcSample is one reading of a process's memory and CPU.
type ProcSample struct {
	At     time.Time
	RSSKB  int64   // resident set size
	CPUSec float64 // user + system CPU time consumed since it started
}

// ReadProc samples process pid from /proc.
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces and parentheses, so fields
	// are counted from the last ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := bytes.Fields(stat[end+1:])
	// After the name: state(3) ... utime(14) stime(15) ... rss(24), so
	// utime is f[11], stime f[12], rss in pages f[21].
	if len(f) < 22 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	rss, err3 := strconv.ParseInt(string(f[21]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad number", pid)
	}
	s.CPUSec = float64(ut+st) / clockTicks
	s.RSSKB = rss * int64(os.Getpagesize()) / 1024
	return s, nil
}

// MachineCPU is the CPU time all cores spent busy and in total, in seconds,
// from the first line of /proc/stat.
func MachineCPU() (busy, total float64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected format")
	}
	// user nice system idle iowait irq softirq steal: idle and iowait are
	// the only ones not busy. Guest time is already inside user.
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		t := float64(n) / clockTicks
		total += t
		if i != 3 && i != 4 {
			busy += t
		}
	}
	return busy, total, nil
}

// selfUsage is this process's own CPU time and peak RSS, from getrusage,
// which is finer-grained than /proc's clock ticks.
func selfUsage() (cpuSec float64, maxRSSKB int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), ru.Maxrss
}
