package benchutil

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Child is a process started by a load generator. Its standard output and error go, line by
// line, to a log file and past the watchers registered with Watch.
type Child struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}

	mu       sync.Mutex
	watchers []*watcher
}

type watcher struct {
	match func(string) bool
	ch    chan string
	all   bool
}

// NewChild prepares path with args; env is added to this process's environment. The child is
// killed if the generator dies (Pdeathsig).
func NewChild(logPath, path string, args []string, env ...string) *Child {
	if !strings.Contains(path, "/") {
		path = "./" + path
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return &Child{cmd: cmd, logPath: logPath, done: make(chan struct{})}
}

// Watch returns a channel that receives the first line matching match. Register watchers
// before Start for lines printed early.
func (c *Child) Watch(match func(line string) bool) <-chan string {
	w := &watcher{match: match, ch: make(chan string, 1)}
	c.mu.Lock()
	c.watchers = append(c.watchers, w)
	c.mu.Unlock()
	return w.ch
}

// WatchAll returns a channel that receives every line matching match (dropping lines when
// nobody reads).
func (c *Child) WatchAll(match func(line string) bool) <-chan string {
	w := &watcher{match: match, ch: make(chan string, 64), all: true}
	c.mu.Lock()
	c.watchers = append(c.watchers, w)
	c.mu.Unlock()
	return w.ch
}

// Start starts the process.
func (c *Child) Start() error {
	logFile, err := os.Create(c.logPath)
	if err != nil {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return err
	}
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		pr.Close()
		pw.Close()
		return fmt.Errorf("start %s: %w", c.cmd.Path, err)
	}
	pw.Close() // the child holds its own copy
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer logFile.Close()
		c.scan(pr, logFile)
	}()
	go func() { _ = c.cmd.Wait(); <-copied; close(c.done) }()
	return nil
}

func (c *Child) scan(r io.ReadCloser, log io.Writer) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		c.mu.Lock()
		kept := c.watchers[:0]
		for _, w := range c.watchers {
			if !w.match(line) {
				kept = append(kept, w)
				continue
			}
			select {
			case w.ch <- line:
			default:
			}
			if w.all {
				kept = append(kept, w)
			}
		}
		c.watchers = kept
		c.mu.Unlock()
	}
}

// Await waits for a line from ch, failing when the child exits, timeout passes or ctx ends.
func (c *Child) Await(ctx context.Context, ch <-chan string, what string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-ch:
		return l, nil
	case <-c.done:
		return "", fmt.Errorf("%s exited (%v) before %s; log: %s", c.cmd.Path, c.cmd.ProcessState, what, Tail(c.logPath))
	case <-t.C:
		return "", fmt.Errorf("%s: no %s within %s; log: %s", c.cmd.Path, what, timeout, Tail(c.logPath))
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Done is closed when the child has exited and its output is copied.
func (c *Child) Done() <-chan struct{} { return c.done }

// PID is the child's process id.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// LogPath is where the child's output goes.
func (c *Child) LogPath() string { return c.logPath }

// Stop asks the child to stop (SIGTERM) and kills it after grace.
func (c *Child) Stop(grace time.Duration) {
	if c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// Tail is the end of a log file, for error messages.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// LogValue returns the value of key=value in a slog text line ("" when absent); quoted values
// are unquoted.
func LogValue(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		end := 1
		for end < len(v) && (v[end] != '"' || v[end-1] == '\\') {
			end++
		}
		return strings.ReplaceAll(v[1:min(end, len(v))], `\"`, `"`)
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}
