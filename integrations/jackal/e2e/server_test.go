package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bins are the two programs the suite builds: the server with lastseen and
// jackal's admin tool.
type bins struct {
	server, ctl string
}

// buildBins builds cmd/jackal-lastseen and jackalctl into dir.
func buildBins(dir string) (bins, error) {
	b := bins{server: filepath.Join(dir, "jackal-lastseen"), ctl: filepath.Join(dir, "jackalctl")}
	for _, c := range [][]string{
		{"go", "build", "-o", b.server, "../cmd/jackal-lastseen"},
		{"go", "build", "-o", b.ctl, "github.com/ortuman/jackal/cmd/jackalctl"},
	} {
		cmd := exec.Command(c[0], c[1:]...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return bins{}, fmt.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	return b, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is one jackal-lastseen process on loopback, with its own
// configuration and data directory.
type server struct {
	t      *testing.T
	bins   bins
	domain string
	dir    string
	c2s    int
	admin  int
	cmd    *exec.Cmd
	log    *os.File
	done   chan error
	env    []string // added to the server's environment
}

const configTemplate = `logger:
  level: info
admin:
  bind_addr: 127.0.0.1
  port: %d
hosts:
  - domain: %s
shapers:
  - name: e2e
    max_sessions: 100
    rate:
      limit: 1048576
      burst: 1048576
storage:
  type: boltdb
  boltdb:
    path: %s
c2s:
  listeners:
    - bind_addr: 127.0.0.1
      port: %d
      sasl:
        mechanisms: [scram_sha_1]
lastseen:
  engine: %s
  data: %s
`

// newServer writes a configuration for domain and the lastseen engine into
// a fresh directory;
// start runs it.
func newServer(t *testing.T, b bins, domain, engine string) *server {
	t.Helper()
	s := &server{t: t, bins: b, domain: domain, dir: t.TempDir(), c2s: freePort(t), admin: freePort(t)}
	cfg := fmt.Sprintf(configTemplate, s.admin, domain, filepath.Join(s.dir, "jackal.db"), s.c2s, engine, filepath.Join(s.dir, "lastseen-data"))
	if err := os.WriteFile(filepath.Join(s.dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs the server and waits, at most 30 s, until its c2s port
// accepts connections.
func (s *server) start() {
	s.t.Helper()
	lf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.log = lf
	s.cmd = exec.Command(s.bins.server, "-config", filepath.Join(s.dir, "config.yaml"))
	s.cmd.Dir = s.dir
	s.cmd.Env = append(os.Environ(), s.env...)
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	s.t.Cleanup(func() {
		s.stop()
		if s.t.Failed() {
			s.t.Logf("server log (tail):\n%s", s.logTail())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			s.t.Fatalf("server exited at start: %v\n%s", err, s.logTail())
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.c2s), time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("server did not listen within 30 s\n%s", s.logTail())
}

// stop sends SIGTERM to the PID it started and waits at most 15 s before
// SIGKILL; an exit status other than 0 fails the test. It is safe to call
// twice.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case err := <-s.done:
		// A clean shutdown (modules stopped, domains taken down, store
		// closed) exits 0; run returns any error of it.
		if err != nil {
			s.t.Errorf("server exited with %v after SIGTERM\n%s", err, s.logTail())
		}
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
	s.log.Close()
}

// crash sends SIGKILL to the PID it started and waits for it to exit, so
// that nothing of a clean shutdown runs.
func (s *server) crash() {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("crash: the server is not running")
	}
	_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
	s.log.Close()
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// addUser creates name with jackalctl, retrying for at most 10 s while the
// admin port comes up.
func (s *server) addUser(name, password string) {
	s.t.Helper()
	var out []byte
	var err error
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, s.bins.ctl, "--host", fmt.Sprintf("127.0.0.1:%d", s.admin), "user", "add", name+":"+password)
		out, err = cmd.CombinedOutput()
		cancel()
		if err == nil && bytes.Contains(out, []byte("created")) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("jackalctl user add %s: %v\n%s", name, errors.Join(err), out)
}
