// Package benchutil holds what the load generators under bench/ share: a child process whose
// log is watched for the lines that say where it listens, the CPU time and memory of a process
// read from /proc, latency statistics and a small line chart drawn with image/png.
package benchutil

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat on Linux.
const ClockTicks = 100

// CPUTicks returns utime+stime of pid in clock ticks, and stime alone.
func CPUTicks(pid int) (total, sys uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// comm (field 2) may hold spaces; the fields after its closing parenthesis start at 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("unexpected /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("bad utime/stime in /proc/PID/stat")
	}
	return ut + st, st, nil
}

// TicksDuration converts clock ticks to a duration.
func TicksDuration(t uint64) time.Duration {
	return time.Duration(t) * time.Second / ClockTicks
}

// RSSKB is VmRSS of pid in kB.
func RSSKB(pid int) (int64, error) { return statusKB(pid, "VmRSS:") }

// HWMKB is VmHWM of pid in kB: the peak resident set size since the process started.
func HWMKB(pid int) (int64, error) { return statusKB(pid, "VmHWM:") }

func statusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/PID/status", strings.TrimSuffix(field, ":"))
}

// LoopbackOnly refuses any URL whose host is not 127.0.0.1, so a generator never loads
// anything but the process it started.
func LoopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Hostname() != "127.0.0.1" {
		return fmt.Errorf("refusing to load %s: only 127.0.0.1 is targeted", raw)
	}
	return nil
}
