package engine

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// ErrNoNode means the node engine cannot run: no `node` on PATH, or no
// bindings/node/driver.mjs to give it.
var ErrNoNode = errors.New("node engine unavailable")

// DriverEnv names the environment variable that overrides where
// bindings/node/driver.mjs is.
const DriverEnv = "LASTSEEN_NODE_DRIVER"

// NodeDriver finds bindings/node/driver.mjs: $LASTSEEN_NODE_DRIVER, or in
// the lastseen module that contains the working directory.
func NodeDriver() (string, error) {
	return moduleFile(DriverEnv, ErrNoNode, "bindings", "node", "driver.mjs")
}

// moduleFile finds a file of the lastseen module: $env, or the path elems
// under the root of the lastseen module that contains the working
// directory. Its errors wrap missing.
func moduleFile(env string, missing error, elems ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	rel := filepath.Join(elems...)
	for {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(mod, []byte("module github.com/lastseen-xmpp/lastseen\n")) {
			p := filepath.Join(dir, rel)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%w: %v", missing, err)
			}
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("%w: run from inside the lastseen module, or set %s to %s", missing, env, filepath.ToSlash(rel))
		}
		dir = up
	}
}

// NodeHost is one process running a scenario driver: Node.js with
// bindings/node/driver.mjs, or Lua with bindings/lua/driver.lua, which
// speaks the same protocol. It serves any number of scenario engines, one
// machine (one WebAssembly instance) each; its methods are safe for
// concurrent use.
type NodeHost struct {
	name   string // "node" or "lua", for messages
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr *tailBuffer
	err    error // set once the process is unusable
}

// StartNode starts a Node.js process with the scenario driver.
func StartNode() (*NodeHost, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	driver, err := NodeDriver()
	if err != nil {
		return nil, err
	}
	return startDriver("node", exec.Command(node, driver))
}

// startDriver starts cmd, a scenario driver speaking driver.mjs's protocol.
func startDriver(name string, cmd *exec.Cmd) (*NodeHost, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	h := &NodeHost{name: name, cmd: cmd, stdin: stdin, out: bufio.NewReaderSize(stdout, 1<<16), stderr: &tailBuffer{max: 8 << 10}}
	cmd.Stderr = h.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return h, nil
}

// Close ends the driver process.
func (h *NodeHost) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = fmt.Errorf("%s host closed", h.name)
	}
	h.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		h.cmd.Process.Kill()
		return <-done
	}
}

// nodeRequest is one line to the driver; zero fields are left out.
type nodeRequest struct {
	Op      string   `json:"op"`
	ID      int      `json:"id,omitempty"`
	Served  []string `json:"served,omitempty"`
	Facts   bool     `json:"hostFacts,omitempty"`
	Now     string   `json:"now,omitempty"`
	Owner   []byte   `json:"owner,omitempty"`
	Contact []byte   `json:"contact,omitempty"`
	JID     []byte   `json:"jid,omitempty"`
	Session []byte   `json:"session,omitempty"`
	Stanza  []byte   `json:"stanza,omitempty"`
	Sub     string   `json:"sub,omitempty"`
	Burst   int      `json:"burst,omitempty"`
	Per     string   `json:"per,omitempty"`
	Snap    []byte   `json:"snapshot,omitempty"`
}

type nodeAnswer struct {
	OK    bool   `json:"ok"`
	ID    int    `json:"id"`
	State []byte `json:"state"`
	Out   []struct {
		Kind   wireKind `json:"kind"`
		To     string   `json:"to"`
		Stanza []byte   `json:"stanza"`
	} `json:"out"`
	Error *NodeError `json:"error"`
	N     int        `json:"n"`
}

// NodeError is an error the Node.js binding reported.
type NodeError struct {
	Code     string `json:"code"`     // LastseenError.code: MALFORMED, SESSION, TRAP, …
	Message  string `json:"message"`  // its message, the same text as the native error's
	BadInput bool   `json:"badInput"` // refused input: nothing emitted, nothing changed
	Event    string `json:"event"`
}

func (e *NodeError) Error() string { return e.Message }

// Is makes errors.Is(err, core.ErrBadInput) true for refused input, and
// errors.Is(err, core.ErrCorrupt) true for a refused snapshot.
func (e *NodeError) Is(target error) bool {
	return e.BadInput && target == core.ErrBadInput || e.Code == "CORRUPT" && target == core.ErrCorrupt
}

func (h *NodeHost) call(req *nodeRequest) (*nodeAnswer, error) {
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return nil, h.err
	}
	fail := func(err error) (*nodeAnswer, error) {
		h.err = fmt.Errorf("%s driver: %v; its stderr: %s", h.name, err, h.stderr.String())
		return nil, h.err
	}
	if _, err := h.stdin.Write(append(line, '\n')); err != nil {
		return fail(err)
	}
	reply, err := h.out.ReadBytes('\n')
	if err != nil {
		return fail(err)
	}
	var a nodeAnswer
	if err := json.Unmarshal(reply, &a); err != nil {
		return fail(fmt.Errorf("bad answer %q: %v", reply, err))
	}
	if !a.OK {
		if a.Error == nil {
			return nil, fmt.Errorf("%s driver: failed without an error", h.name)
		}
		return nil, a.Error
	}
	return &a, nil
}

// Factory returns a scenario.Factory whose engines are machines in this
// process.
func (h *NodeHost) Factory() scenario.Factory {
	return func(served []string) (scenario.Engine, error) {
		a, err := h.call(&nodeRequest{Op: "new", Served: served})
		if err != nil {
			return nil, err
		}
		return &nodeEngine{h: h, id: a.ID}, nil
	}
}

// HostFactsFactory is Factory with the facts from the host (ABI version
// 3): the driver's machines ask a fact table in the driver (a JS FactTable,
// a Lua table) through the binding's authorizer callbacks, and the
// script's roster, block and hide lines fill that table. A fact line is
// checked, and refused, by a native machine over a core.MemoryAuth as the
// native engine checks it; the table gets its JIDs normalised, as a
// server's roster storage holds them.
func (h *NodeHost) HostFactsFactory() scenario.Factory {
	return func(served []string) (scenario.Engine, error) {
		check, err := core.New(core.Config{Served: served, Auth: core.NewMemoryAuth()})
		if err != nil {
			return nil, err
		}
		a, err := h.call(&nodeRequest{Op: "new", Served: served, Facts: true})
		if err != nil {
			return nil, err
		}
		return &hostFactsEngine{nodeEngine: &nodeEngine{h: h, id: a.ID}, check: &hosted{m: check}}, nil
	}
}

// hostFactsEngine is a driver engine whose facts the driver's table holds.
type hostFactsEngine struct {
	*nodeEngine
	check *hosted
}

// norm is the normalised form of a JID that check has accepted.
func norm(s string) []byte { return []byte(stanza.MustParse(s).String()) }

func (n *hostFactsEngine) Roster(owner, contact, sub string) error {
	if err := n.check.Roster(owner, contact, sub); err != nil {
		return err
	}
	return n.fact(nodeRequest{Op: "roster", Owner: []byte(stanza.MustParse(owner).Bare().String()), Contact: []byte(stanza.MustParse(contact).Bare().String()), Sub: sub})
}

func (n *hostFactsEngine) Block(owner, jid string) error {
	if err := n.check.Block(owner, jid); err != nil {
		return err
	}
	return n.fact(nodeRequest{Op: "block", Owner: []byte(stanza.MustParse(owner).Bare().String()), JID: norm(jid)})
}

func (n *hostFactsEngine) Hide(owner string) error {
	if err := n.check.Hide(owner); err != nil {
		return err
	}
	return n.fact(nodeRequest{Op: "hide", Owner: []byte(stanza.MustParse(owner).Bare().String())})
}

// Node returns a scenario.Factory that runs scripts on the WebAssembly
// module under Node.js (bindings/node, on its minimal WASI shim). One node
// process starts at the first script and serves every later one; it exits
// when this process does (its stdin closes).
func Node() scenario.Factory { return lazyHost(StartNode, (*NodeHost).Factory) }

// NodeHostFacts is Node with the facts from the host (ABI version 3; see
// HostFactsFactory).
func NodeHostFacts() scenario.Factory { return lazyHost(StartNode, (*NodeHost).HostFactsFactory) }

// lazyHost returns a scenario.Factory whose engines, made by factory, live
// in one driver process, started by start at the first script.
func lazyHost(start func() (*NodeHost, error), factory func(*NodeHost) scenario.Factory) scenario.Factory {
	var (
		once sync.Once
		host *NodeHost
		err  error
	)
	return func(served []string) (scenario.Engine, error) {
		once.Do(func() { host, err = start() })
		if err != nil {
			return nil, err
		}
		return factory(host)(served)
	}
}

type nodeEngine struct {
	h    *NodeHost
	id   int
	last []core.Output
}

var nodeKinds = map[string]core.Kind{"reply": core.Reply, "probe": core.RoutedProbe, "error": core.ErrorReply, "iq-reply": core.IQReply, "query": core.RoutedQuery}

// wireKind is an output's kind as a driver sends it: a name from nodeKinds,
// or the ABI's number for a kind the binding does not name (the Lua
// binding keeps it), so that a new kind reaches the comparison as itself.
type wireKind core.Kind

func (k *wireKind) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		*k = wireKind(nodeKinds[name])
		return nil
	}
	var n uint8
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("output kind %s: neither a name nor a number", b)
	}
	*k = wireKind(n)
	return nil
}

func (n *nodeEngine) input(req nodeRequest) ([][]byte, error) {
	req.ID = n.id
	n.last = nil
	a, err := n.h.call(&req)
	if err != nil {
		return nil, err
	}
	res := make([][]byte, len(a.Out))
	for i, o := range a.Out {
		res[i] = o.Stanza
		n.last = append(n.last, core.Output{Kind: core.Kind(o.Kind), To: []byte(o.To), Stanza: o.Stanza})
	}
	return res, nil
}

func (n *nodeEngine) lastOutputs() []core.Output { return n.last }

func (n *nodeEngine) fact(req nodeRequest) error {
	req.ID = n.id
	_, err := n.h.call(&req)
	return err
}

func nanos(t clock.Time) string { return strconv.FormatInt(int64(t), 10) }

func (n *nodeEngine) Roster(owner, contact, sub string) error {
	if _, ok := core.ParseSubscription(sub); !ok {
		return &core.InputError{Event: "roster", Err: core.ErrConfig}
	}
	return n.fact(nodeRequest{Op: "roster", Owner: []byte(owner), Contact: []byte(contact), Sub: sub})
}

func (n *nodeEngine) Block(owner, jid string) error {
	return n.fact(nodeRequest{Op: "block", Owner: []byte(owner), JID: []byte(jid)})
}

func (n *nodeEngine) Hide(owner string) error {
	return n.fact(nodeRequest{Op: "hide", Owner: []byte(owner)})
}

func (n *nodeEngine) Limit(now clock.Time, burst int, per time.Duration) error {
	return n.fact(nodeRequest{Op: "limit", Now: nanos(now), Burst: burst, Per: strconv.FormatInt(int64(per), 10)})
}

func (n *nodeEngine) Client(now clock.Time, s string, xml []byte) ([][]byte, error) {
	return n.input(nodeRequest{Op: "client", Now: nanos(now), Session: []byte(s), Stanza: xml})
}

func (n *nodeEngine) Server(now clock.Time, xml []byte) ([][]byte, error) {
	return n.input(nodeRequest{Op: "server", Now: nanos(now), Stanza: xml})
}

func (n *nodeEngine) Close(now clock.Time, s string) ([][]byte, error) {
	return n.input(nodeRequest{Op: "close", Now: nanos(now), JID: []byte(s)})
}

func (n *nodeEngine) Up(now clock.Time, s string) ([][]byte, error) {
	return n.input(nodeRequest{Op: "up", Now: nanos(now), JID: []byte(s)})
}

func (n *nodeEngine) Down(now clock.Time, s string) ([][]byte, error) {
	return n.input(nodeRequest{Op: "down", Now: nanos(now), JID: []byte(s)})
}

func (n *nodeEngine) State() ([]byte, error) {
	a, err := n.h.call(&nodeRequest{Op: "state", ID: n.id})
	if err != nil {
		return nil, err
	}
	return a.State, nil
}

// Snapshot implements Durable.
func (n *nodeEngine) Snapshot() ([]byte, error) {
	a, err := n.h.call(&nodeRequest{Op: "snapshot", ID: n.id})
	if err != nil {
		return nil, err
	}
	return a.State, nil
}

// Restore implements Durable.
func (n *nodeEngine) Restore(snapshot []byte) error {
	return n.fact(nodeRequest{Op: "restore", Snap: snapshot})
}

// Restarted implements Durable.
func (n *nodeEngine) Restarted() (int, error) {
	a, err := n.h.call(&nodeRequest{Op: "restarted", ID: n.id})
	if err != nil {
		return 0, err
	}
	return a.N, nil
}

func (n *nodeEngine) Release() error {
	return n.fact(nodeRequest{Op: "release"})
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
