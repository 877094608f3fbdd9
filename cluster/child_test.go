//go:build unix

package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The child-process tests run three copies of this test binary, each with
// one embedded etcd member and one node, driven over loopback HTTP, so
// that a whole node (member and machine) can be killed or paused.

const childEnv = "LASTSEEN_CLUSTER_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childSpec is what the parent tells a child, as JSON in childEnv.
type childSpec struct {
	Index   int
	Members []memberSpec
	DataDir string
}

// runChild starts the member and the node, prints "READY <port>" and
// serves until killed.
func runChild(specJSON string) error {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	me := spec.Members[spec.Index]
	e, err := startMember(me, spec.Members)
	if err != nil {
		return err
	}
	if err := waitReady(e, 30*time.Second); err != nil {
		return err
	}
	eps := []string{me.clientURL()}
	for i, m := range spec.Members {
		if i != spec.Index {
			eps = append(eps, m.clientURL())
		}
	}
	cli, err := clientv3.New(clientConfig(eps))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{
		Client: cli, NodeID: me.Name, Prefix: "/t/",
		Core:     core.Config{Served: served},
		Shards:   4,
		LeaseTTL: 2 * time.Second, WriteTimeout: 3 * time.Second,
		SnapshotEvery: 20, DataDir: spec.DataDir,
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("READY %d\n", l.Addr().(*net.TCPAddr).Port)
	return http.Serve(l, childHandler(n))
}

// reply is a child's answer to one call.
type reply struct {
	Out     []string `json:",omitempty"`
	Err     string   `json:",omitempty"`
	Kind    string   `json:",omitempty"` // expired, notcommitted, other
	Applied int64
	Member  string
	Stats   Stats
	State   []byte `json:",omitempty"`
}

func errKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrNotCommitted):
		return "notcommitted"
	}
	return "other"
}

func childHandler(n *Node) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		body, _ := io.ReadAll(r.Body)
		now, _ := strconv.ParseInt(q.Get("now"), 10, 64)
		var out []core.Output
		var err error
		switch r.URL.Path {
		case "/client":
			var s stanza.JID
			if s, err = stanza.Parse(q.Get("session")); err == nil {
				out, err = n.Client(clock.Time(now), s, body)
			}
		case "/close":
			var s stanza.JID
			if s, err = stanza.Parse(q.Get("session")); err == nil {
				out, err = n.Close(clock.Time(now), s)
			}
		case "/server":
			out, err = n.Server(clock.Time(now), body)
		case "/roster":
			err = n.SetRoster(stanza.MustParse(q.Get("owner")), stanza.MustParse(q.Get("contact")), core.SubBoth)
		case "/rejoin":
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			err = n.Rejoin(ctx)
			cancel()
		case "/wait":
			rev, _ := strconv.ParseInt(q.Get("rev"), 10, 64)
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			err = n.WaitApplied(ctx, rev)
			cancel()
		case "/state", "/stats":
		default:
			http.NotFound(w, r)
			return
		}
		rep := reply{Out: outputStrings(out), Kind: errKind(err), Applied: n.Applied(), Member: n.Member(), Stats: n.Stats()}
		if err != nil {
			rep.Err = err.Error()
		}
		if r.URL.Path == "/state" {
			rep.State = n.AppendState(nil)
		}
		json.NewEncoder(w).Encode(rep)
	})
}

// child is one node process, seen from the parent.
type child struct {
	t      *testing.T
	idx    int
	cmd    *exec.Cmd
	base   string
	stderr string
	done   chan struct{}
}

var httpc = &http.Client{Timeout: 15 * time.Second}

func startChildren(t *testing.T, spec []childSpec, which ...int) []*child {
	t.Helper()
	cs := make([]*child, len(which))
	errs := make(chan error, len(which))
	for i, idx := range which {
		go func() {
			c, err := startChild(t, spec[idx])
			cs[i] = c
			errs <- err
		}()
	}
	for range which {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return cs
}

func startChild(t *testing.T, spec childSpec) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	js, _ := json.Marshal(spec)
	c := &child{t: t, idx: spec.Index, done: make(chan struct{}), stderr: fmt.Sprintf("%s/stderr-%d-%d", spec.DataDir, spec.Index, time.Now().UnixNano())}
	// -test.run matches nothing: TestMain runs the child before any test.
	c.cmd = exec.Command(self, "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	if err := os.MkdirAll(spec.DataDir, 0o700); err != nil {
		return nil, err
	}
	errf, err := os.Create(c.stderr)
	if err != nil {
		return nil, err
	}
	c.cmd.Stderr = errf
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.kill() })
	go func() { c.cmd.Wait(); errf.Close(); close(c.done) }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- p
			}
		}
	}()
	select {
	case p := <-ready:
		c.base = "http://127.0.0.1:" + p
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("child %d exited before READY: %s", spec.Index, tail(c.stderr))
	case <-time.After(45 * time.Second):
		return nil, fmt.Errorf("child %d not READY after 45 s: %s", spec.Index, tail(c.stderr))
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// kill ends the child with SIGKILL (by the PID this test started) and
// reaps it.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Errorf("child %d (pid %d) did not exit after SIGKILL", c.idx, c.cmd.Process.Pid)
	}
}

func (c *child) call(path string, q url.Values, body []byte) (reply, error) {
	resp, err := httpc.Post(c.base+path+"?"+q.Encode(), "application/xml", strings.NewReader(string(body)))
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	var r reply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return reply{}, fmt.Errorf("child %d %s: %v", c.idx, path, err)
	}
	return r, nil
}

// must calls and fails the test on a transport error.
func (c *child) must(path string, q url.Values, body []byte) reply {
	c.t.Helper()
	r, err := c.call(path, q, body)
	if err != nil {
		c.t.Fatalf("child %d %s: %v\n%s", c.idx, path, err, tail(c.stderr))
	}
	return r
}

func clientQ(session string, now clock.Time) url.Values {
	return url.Values{"session": {session}, "now": {strconv.FormatInt(int64(now), 10)}}
}
