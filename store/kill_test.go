//go:build unix

package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// childEnv switches the test binary into the child of TestKillMidStream:
// its value is the store directory.
const childEnv = "LASTSEEN_STORE_KILL_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(child(dir))
	}
	if dir := os.Getenv(shardedChildEnv); dir != "" {
		os.Exit(shardedChild(dir))
	}
	os.Exit(m.Run())
}

// child hosts a Durable and reads events from stdin, one JSON object a
// line; after each call returns (so after its fsync) it writes "ack N".
// It compacts often, so that the kill also lands during compactions.
func child(dir string) int {
	d, err := Open(dir, testConfig, Options{CompactEvery: 13})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Fprintln(os.Stdout, "ready")
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 1<<20)
	for n := 1; in.Scan(); n++ {
		var e event
		if err := json.Unmarshal(in.Bytes(), &e); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		if _, err := apply(d, e); err != nil && !errors.Is(err, core.ErrBadInput) {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		fmt.Fprintf(os.Stdout, "ack %d\n", n)
	}
	d.Shutdown()
	return 0
}

// TestKillMidStream runs the store in a child process, streams events to
// it, SIGKILLs it while events are in flight, reopens the store here and
// checks that every acknowledged change is answered correctly by probes,
// with the restart rule applied to the sessions that were online. It does
// that over several rounds on the same directory, each child starting from
// what the previous one left.
func TestKillMidStream(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(11, 29))
	base := newRef(t) // the state the store holds at the start of a round
	now := clock.Epoch2000
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	for round := 0; round < rounds; round++ {
		evs := genEvents(r, now, 200)
		now = evs[len(evs)-1].Now
		killAt := 30 + r.IntN(120)

		cmd, stdin, lines := startChild(t, round, exe, childEnv, dir)
		// Stream every event without waiting, so that several are in
		// flight when the kill comes.
		sent := make(chan int, 1)
		go func() {
			n := 0
			defer func() { sent <- n }()
			w := bufio.NewWriter(stdin)
			for _, e := range evs {
				b, _ := json.Marshal(e)
				w.Write(append(b, '\n'))
				if w.Flush() != nil {
					return
				}
				n++
			}
		}()
		acked := 0
		for acked < killAt && lines.Scan() {
			if n, err := strconv.Atoi(strings.TrimPrefix(lines.Text(), "ack ")); err != nil || n != acked+1 {
				t.Fatalf("round %d: child said %q after %d acks", round, lines.Text(), acked)
			}
			acked++
		}
		if acked < killAt {
			t.Fatalf("round %d: child stopped after %d acks", round, acked)
		}
		killChild(t, round, cmd, stdin, func() {
			for lines.Scan() {
			}
		})
		inFlight := <-sent - acked

		d, err := Open(dir, testConfig, Options{})
		if err != nil {
			t.Fatalf("round %d: reopening after the kill: %v", round, err)
		}
		got := d.Machine().Snapshot(nil)
		// The store holds every acknowledged event and possibly some of
		// those in flight, persisted but not yet acknowledged.
		var ref, before *core.Machine
		matched := -1
		for k := 0; k <= inFlight && matched < 0; k++ {
			before = copyMachine(t, base)
			for _, e := range evs[:acked+k] {
				apply(before, e)
			}
			ref = copyMachine(t, before)
			ref.Restarted()
			if bytes.Equal(got, ref.Snapshot(nil)) {
				matched = k
			}
		}
		if matched < 0 {
			d.Shutdown()
			t.Fatalf("round %d: after the kill at ack %d (%d in flight) the store matches no prefix of the acknowledged stream", round, acked, inFlight)
		}
		t.Logf("round %d: killed after %d acks, %d in flight, %d of them persisted; recovery %+v", round, acked, inFlight, matched, d.Recovery())
		checkProbes(t, round, d, ref, before, lastChange(t, base, evs[:acked+matched]))
		base = copyMachine(t, ref)
		if err := d.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
}

// startChild starts this test binary as the child of a kill test (env set
// to dir) and waits until it says it is ready.
func startChild(t *testing.T, round int, exe, env, dir string) (*exec.Cmd, io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("round %d: child did not start: %q", round, lines.Text())
	}
	return cmd, stdin, lines
}

// killChild SIGKILLs the child, reads what it wrote before it died (drain
// reads its stdout to the end) and checks that the kill is what ended it.
func killChild(t *testing.T, round int, cmd *exec.Cmd, stdin io.Closer, drain func()) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	drain()
	werr := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child was not killed by SIGKILL: %v", round, werr)
	}
}

func copyMachine(t *testing.T, m *core.Machine) *core.Machine {
	c := newRef(t)
	if err := c.Restore(m.Snapshot(nil)); err != nil {
		t.Fatal(err)
	}
	return c
}

// lastChange is the time of the last event that changed durable state, on
// top of base: what the restart rule stamps.
func lastChange(t *testing.T, base *core.Machine, evs []event) clock.Time {
	m := copyMachine(t, base)
	var last clock.Time
	for _, e := range evs {
		if _, err := apply(m, e); err == nil && len(m.Records()) > 0 {
			last = e.Now
		}
	}
	return last
}

// checkProbes probes every user and session on the reopened store d and on
// ref, the reference machine fed the same acknowledged events then
// restarted; before is ref before the restart. Replies must be the same
// bytes, nobody may appear online, and each user who was online before the
// kill must be offline since the last change, from one of the sessions that
// were online.
func checkProbes(t *testing.T, round int, d *Durable, ref, before *core.Machine, last clock.Time) {
	t.Helper()
	at := last + 3600e9
	probe := func(m machine, from, to string) []string {
		out, err := m.Server(at, []byte(`<presence from='`+from+`' to='`+to+`' type='probe' id='k'/>`))
		if err != nil {
			t.Fatalf("round %d: probe %s: %v", round, to, err)
		}
		var s []string
		for _, o := range out {
			s = append(s, string(o.Stanza))
		}
		return s
	}
	for _, u := range testUsers {
		bare := stanza.MustParse(u + "@montague.com").String()
		var online []string
		for _, res := range testResources {
			full := bare + "/" + res
			if w := probe(before, bare+"/x", full); len(w) == 1 && !strings.Contains(w[0], "unavailable") {
				online = append(online, full)
			}
			got, want := probe(d, bare+"/x", full), probe(ref, bare+"/x", full)
			if strings.Join(got, "") != strings.Join(want, "") {
				t.Errorf("round %d: probe to %s got %q, want %q", round, full, got, want)
			}
			if len(got) != 1 || !strings.Contains(got[0], "type='unavailable'") {
				t.Errorf("round %d: %s is a ghost after the restart: %q", round, full, got)
			}
		}
		got, want := probe(d, bare+"/x", bare), probe(ref, bare+"/x", bare)
		if strings.Join(got, "") != strings.Join(want, "") {
			t.Errorf("round %d: probe to %s got %q, want %q", round, bare, got, want)
		}
		if stranger := probe(d, "mallory@evil.example", bare); len(stranger) != 1 || !strings.Contains(stranger[0], "type='unsubscribed'") {
			t.Errorf("round %d: a stranger's probe to %s got %q", round, bare, stranger)
		}
		if len(online) == 0 {
			continue
		}
		stamp := string(last.AppendFormat(nil))
		ok := false
		for _, full := range online {
			ok = ok || len(got) == 1 && strings.HasSuffix(got[0], fmt.Sprintf("<delay xmlns='urn:xmpp:delay' from='%s' stamp='%s'/></presence>", full, stamp))
		}
		if !ok {
			t.Errorf("round %d: %s was online at the kill (%v); after the restart got %q, want unavailable since %s", round, bare, online, got, stamp)
		}
	}
}
