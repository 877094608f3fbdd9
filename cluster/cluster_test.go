package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// In-process tests: three embedded etcd members and three nodes in the
// test process. The child-process tests (child_test.go) kill and pause
// whole nodes.

var served = []string{"montague.com", "capulet.com"}

type testCluster struct {
	t       testing.TB
	specs   []memberSpec
	members []*embed.Etcd
	stopped map[*embed.Etcd]bool
	clients []*clientv3.Client
	nodes   []*Node
}

func testConfig(cli *clientv3.Client, id string) Config {
	return Config{
		Client: cli, NodeID: id, Prefix: "/t/",
		Core:     core.Config{Served: served},
		Shards:   4,
		LeaseTTL: 2 * time.Second, WriteTimeout: 3 * time.Second,
		SnapshotEvery: 50,
	}
}

// stopMember closes e once (embed.Etcd.Close panics on a second call).
func (c *testCluster) stopMember(e *embed.Etcd) {
	if !c.stopped[e] {
		c.stopped[e] = true
		e.Close()
	}
}

// startCluster starts three members and a node on each, the node's client
// pointed at its own member first.
func startCluster(t testing.TB, cfg func(i int, c *Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, specs: clusterSpecs(t, t.TempDir(), 3), stopped: make(map[*embed.Etcd]bool)}
	for _, s := range c.specs {
		e, err := startMember(s, c.specs)
		if err != nil {
			t.Fatal(err)
		}
		c.members = append(c.members, e)
		t.Cleanup(func() { c.stopMember(e) })
	}
	for _, e := range c.members {
		if err := waitReady(e, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for i := range c.specs {
		eps := []string{c.specs[i].clientURL()}
		for j := range c.specs {
			if j != i {
				eps = append(eps, c.specs[j].clientURL())
			}
		}
		c.clients = append(c.clients, newClient(t, eps))
	}
	for i := range c.specs {
		c.startNode(i, cfg)
	}
	return c
}

func (c *testCluster) startNode(i int, cfg func(i int, c *Config)) *Node {
	c.t.Helper()
	conf := testConfig(c.clients[i%len(c.clients)], fmt.Sprintf("n%d", i+1))
	if cfg != nil {
		cfg(i, &conf)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := Start(ctx, conf)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { n.Stop() })
	if i < len(c.nodes) {
		c.nodes[i] = n
	} else {
		c.nodes = append(c.nodes, n)
	}
	return n
}

// settle waits until every node given has applied the newest revision.
func (c *testCluster) settle(nodes ...*Node) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.clients[0].Get(ctx, "/t/w/log")
	if err != nil {
		c.t.Fatal(err)
	}
	for _, n := range nodes {
		if err := n.WaitApplied(ctx, resp.Header.Revision); err != nil {
			c.t.Fatal(err)
		}
	}
}

func broadcast(show string) []byte {
	return []byte(fmt.Sprintf(`<presence><show>%s</show></presence>`, show))
}

var unavailable = []byte(`<presence type='unavailable'><status>bye</status></presence>`)

// logged is one input found in the log: who wrote what.
type logged struct {
	session string
	raw     string
}

// replay feeds a single core.Machine the committed log up to revision
// upTo, read from etcd independently of the nodes, with the cluster's
// rules written out again here: time is the latest stamp so far, and the
// Delete of a member key closes, in order, the sessions whose last
// broadcast that member wrote. It returns the machine, the number of
// batches, and every input logged.
func replay(t *testing.T, cli *clientv3.Client, upTo int64) (*core.Machine, int, map[logged]bool) {
	t.Helper()
	rec := recordLog(t, cli)
	return replayEvents(t, rec.upTo(t, upTo))
}

// logRecorder keeps every event of the log from revision 1, watched from
// the start of a test, so that etcd's compaction (which removes history a
// new watch could read) does not hide it from the reference.
type logRecorder struct {
	cli    *clientv3.Client
	mu     sync.Mutex
	events []*clientv3.Event
	rev    int64 // every event up to rev is in events
	err    error
}

func recordLog(t *testing.T, cli *clientv3.Client) *logRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &logRecorder{cli: cli}
	// The recorder reports what it has seen as a node would, so that the
	// nodes never compact history it has not read: a watch that falls
	// behind (a slow reader) is otherwise cancelled by the compaction.
	if _, err := cli.Put(ctx, "/t/a/recorder", "0"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			r.mu.Lock()
			rev := r.rev
			r.mu.Unlock()
			cli.Put(ctx, "/t/a/recorder", strconv.FormatInt(rev, 10))
		}
	}()
	wch := cli.Watch(ctx, "/t/w/", clientv3.WithPrefix(), clientv3.WithRev(1))
	go func() {
		for wr := range wch {
			r.mu.Lock()
			if err := wr.Err(); err != nil {
				r.err = fmt.Errorf("recorder at %d events, rev %d, compact rev %d: %w", len(r.events), r.rev, wr.CompactRevision, err)
			}
			r.events = append(r.events, wr.Events...)
			if wr.IsProgressNotify() {
				r.rev = max(r.rev, wr.Header.Revision)
			} else if len(wr.Events) > 0 {
				r.rev = max(r.rev, wr.Events[len(wr.Events)-1].Kv.ModRevision)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

// upTo returns the events up to revision rev, once it has them all.
func (r *logRecorder) upTo(t *testing.T, rev int64) []*clientv3.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		have, err := r.rev, r.err
		evs := slices.Clone(r.events)
		r.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if have >= rev {
			i := 0
			for i < len(evs) && evs[i].Kv.ModRevision <= rev {
				i++
			}
			return evs[:i]
		}
		r.cli.RequestProgress(context.Background())
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the log recorder did not reach revision %d in 10 s", rev)
	return nil
}

// replayEvents is replay over recorded events.
func replayEvents(t *testing.T, events []*clientv3.Event) (*core.Machine, int, map[logged]bool) {
	t.Helper()
	m, err := core.New(core.Config{Served: served})
	if err != nil {
		t.Fatal(err)
	}
	var now clock.Time
	batches := 0
	seen := make(map[logged]bool)
	owner := make(map[string]string)
	for _, ev := range events {
		if key := string(ev.Kv.Key); key != "/t/w/log" {
			if ev.Type != mvccpb.DELETE {
				continue
			}
			var gone []string
			for s, w := range owner {
				if w == key {
					gone = append(gone, s)
				}
			}
			slices.Sort(gone)
			for _, s := range gone {
				delete(owner, s)
				m.Close(now, stanza.MustParse(s))
			}
			continue
		}
		b, err := decodeBatch(ev.Kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		batches++
		for _, e := range b.entries {
			if e.stamp > now {
				now = e.stamp
			}
			seen[logged{e.jid, string(e.raw)}] = true
			j := stanza.MustParse(e.jid)
			switch e.kind {
			case kindClient:
				if _, err = m.Client(now, j, e.raw); err == nil {
					if bytes.Contains(e.raw, []byte("unavailable")) {
						delete(owner, e.jid)
					} else {
						owner[e.jid] = b.writer
					}
				}
			case kindClose:
				delete(owner, e.jid)
				_, err = m.Close(now, j)
			case kindUp:
				_, err = m.Up(now, j)
			case kindDown:
				_, err = m.Down(now, j)
			case kindLimit:
				err = m.SetProbeLimit(now, e.limit)
			}
			_ = err // refused inputs are refused alike by the nodes
		}
	}
	return m, batches, seen
}

// TestNodesEqualOneMachine drives three nodes concurrently, with clocks
// that disagree, and users whose sessions are on several nodes; every
// node's AppendState must equal a single Machine fed the committed log in
// order, and the same probe must get the same reply on every node.
func TestNodesEqualOneMachine(t *testing.T) {
	// The reference replays the whole log: no compaction here.
	c := startCluster(t, func(i int, cfg *Config) { cfg.NoCompact = true })
	base := clock.Epoch2000
	// Node i's clock runs i hours behind node 0's: time must not go back.
	skew := []time.Duration{0, -time.Hour, -2 * time.Hour}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 40 {
				now := base.Add(time.Duration(k)*time.Second + skew[i])
				// Users 0..9, each with a resource per node.
				s := stanza.MustParse(fmt.Sprintf("u%d@montague.com/n%d", k%10, i))
				var err error
				switch k % 4 {
				case 0, 1:
					_, err = n.Client(now, s, broadcast(fmt.Sprintf("s%d", k)))
				case 2:
					_, err = n.Client(now, s, unavailable)
				case 3:
					_, err = n.Close(now, s)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Up and Down go through the log too; bad input is refused before it.
	if _, err := c.nodes[1].Up(base, stanza.MustParse("capulet.com")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[2].Down(base, stanza.MustParse("conference.capulet.com")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[1].Up(base, stanza.MustParse("someone@capulet.com")); err == nil {
		t.Fatal("Up of a user JID: want an error")
	}
	if _, err := c.nodes[2].Client(base, stanza.MustParse("x@montague.com/r"), []byte(`<presence><!-- no --></presence>`)); err == nil {
		t.Fatal("a comment in a stanza: want an error")
	}
	c.settle(c.nodes...)
	rev := c.nodes[0].Applied()
	ref, batches, _ := replay(t, c.clients[0], rev)
	want := ref.AppendState(nil)
	for i, n := range c.nodes {
		if got := n.AppendState(nil); !bytes.Equal(got, want) {
			t.Errorf("node %d: AppendState differs from the single machine's (%d vs %d bytes)", i, len(got), len(want))
		}
	}
	var entries int64
	for _, n := range c.nodes {
		entries += n.Stats().Entries
	}
	if entries != 3*40+2 {
		t.Errorf("entries acknowledged = %d, want %d", entries, 3*40+2)
	}
	t.Logf("%d inputs in %d batches", entries, batches)

	// The same probe, from another server, on every node.
	for _, n := range c.nodes {
		if err := n.SetRoster(stanza.MustParse("u3@montague.com"), stanza.MustParse("juliet@capulet.com"), core.SubBoth); err != nil {
			t.Fatal(err)
		}
	}
	probe := []byte(`<presence from='juliet@capulet.com/balcony' to='u3@montague.com' type='probe' id='p1'/>`)
	var first []core.Output
	for i, n := range c.nodes {
		out, err := n.Server(base.Add(time.Hour), probe)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = out
			if len(out) == 0 {
				t.Fatal("probe: no reply")
			}
			continue
		}
		if diff := cmp.Diff(outputStrings(first), outputStrings(out)); diff != "" {
			t.Errorf("node %d answers the probe differently (-node 0 +node %d):\n%s", i, i, diff)
		}
	}
}

func outputStrings(out []core.Output) []string {
	var s []string
	for _, o := range out {
		s = append(s, o.Kind.String()+" "+string(o.To)+" "+string(o.Stanza))
	}
	return s
}

// TestReadYourWrites: a broadcast acknowledged on one node is visible to
// the next call on that node, and soon on the others.
func TestReadYourWrites(t *testing.T) {
	c := startCluster(t, nil)
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	for i, n := range c.nodes {
		if err := n.SetRoster(romeo.Bare(), stanza.MustParse("juliet@capulet.com"), core.SubBoth); err != nil {
			t.Fatal(err)
		}
		_ = i
	}
	probe := []byte(`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe'/>`)
	for k := range 20 {
		now := clock.Epoch2000.Add(time.Duration(k) * time.Minute)
		show := fmt.Sprintf("k%d", k)
		if _, err := c.nodes[k%3].Client(now, romeo, broadcast(show)); err != nil {
			t.Fatal(err)
		}
		out, err := c.nodes[k%3].Server(now, probe)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || !bytes.Contains(out[0].Stanza, []byte("<show>"+show+"</show>")) {
			t.Fatalf("after its own broadcast %q the writer answers %s", show, outputStrings(out))
		}
	}
}

// TestBatching: concurrent changes on one node go in fewer log entries
// than inputs, and each caller still gets its own result.
func TestBatching(t *testing.T) {
	c := startCluster(t, nil)
	n := c.nodes[0]
	var wg sync.WaitGroup
	const writers, each = 32, 10
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stanza.MustParse(fmt.Sprintf("w%d@capulet.com/r", w))
			for k := range each {
				if _, err := n.Client(clock.Epoch2000.Add(time.Duration(k)), s, broadcast("chat")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := n.Stats()
	if st.Entries != writers*each || st.Batches >= st.Entries {
		t.Errorf("stats %+v: want %d entries in fewer batches", st, writers*each)
	}
	t.Logf("%d entries in %d batches", st.Entries, st.Batches)
}

// TestLeaseGuard: once a node's lease is gone its writes are refused by
// etcd; the expiry is one log entry that closes its sessions on every node
// exactly once; Rejoin lets it write again.
func TestLeaseGuard(t *testing.T) {
	c := startCluster(t, nil)
	victim := c.nodes[2]
	sessions := []stanza.JID{
		stanza.MustParse("a@montague.com/n3"), stanza.MustParse("b@montague.com/n3"),
		stanza.MustParse("c@capulet.com/n3"),
	}
	for _, s := range sessions {
		if _, err := victim.Client(clock.Epoch2000, s, broadcast("away")); err != nil {
			t.Fatal(err)
		}
	}
	// One of a's resources is on another node: it stays online.
	other := stanza.MustParse("a@montague.com/n1")
	if _, err := c.nodes[0].Client(clock.Epoch2000, other, broadcast("chat")); err != nil {
		t.Fatal(err)
	}
	// The lease goes (as if it had expired) while the node runs.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.clients[0].Revoke(ctx, victim.lease); err != nil {
		t.Fatal(err)
	}
	c.settle(c.nodes...)
	for i, n := range c.nodes {
		if got := n.Stats().ExpiryClosed; got != int64(len(sessions)) {
			t.Errorf("node %d closed %d sessions on the expiry, want %d", i, got, len(sessions))
		}
	}
	_, err := victim.Client(clock.Epoch2000.Add(time.Second), sessions[0], broadcast("back"))
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("a write after the expiry: got %v, want ErrExpired", err)
	}
	want := c.nodes[0].Snapshot(nil)
	for i, n := range c.nodes {
		if got := n.Snapshot(nil); !bytes.Equal(got, want) {
			t.Errorf("node %d: durable state differs from node 0's after the expiry", i)
		}
	}
	if err := victim.Rejoin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := victim.Client(clock.Epoch2000.Add(2*time.Second), sessions[0], broadcast("back")); err != nil {
		t.Fatalf("a write after Rejoin: %v", err)
	}
	c.settle(c.nodes...)
	for i, n := range c.nodes {
		if got := n.Stats().ExpiryClosed; got != int64(len(sessions)) {
			t.Errorf("node %d: %d expiry closes after the rejoin, want still %d (exactly once)", i, got, len(sessions))
		}
	}
}

// TestGuardRefusesStaleMember: a batch guarded on a member key that is gone
// is refused by etcd itself, even when the node has not yet noticed.
func TestGuardRefusesStaleMember(t *testing.T) {
	c := startCluster(t, nil)
	victim := c.nodes[1]
	member := victim.Member()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The member key is deleted behind the node's back; once the node has
	// applied that, it is made to believe it is still a member, so that
	// only etcd's guard stands between its batch and the log.
	del, err := c.clients[0].Delete(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.WaitApplied(ctx, del.Header.Revision); err != nil {
		t.Fatal(err)
	}
	victim.mu.Lock()
	victim.member = member
	victim.mu.Unlock()
	req := &request{e: entry{kind: kindClose, stamp: clock.Epoch2000, jid: "x@montague.com/r"}, done: make(chan result, 1)}
	victim.commit([]*request{req}, nil)
	if res := <-req.done; !errors.Is(res.err, ErrExpired) {
		t.Fatalf("a batch guarded on a deleted member key: got %v, want ErrExpired", res.err)
	}
	if st := victim.Stats(); st.Refused != 1 {
		t.Errorf("Refused = %d, want 1", st.Refused)
	}
}

// TestCatchUpBehindCompaction: with snapshots every 50 entries, the oldest
// node publishes and compacts; a new node, whose log is gone, loads the
// published snapshot and replays the rest to the same durable state.
func TestCatchUpBehindCompaction(t *testing.T) {
	c := startCluster(t, nil)
	for k := range 300 {
		s := stanza.MustParse(fmt.Sprintf("u%d@montague.com/r%d", k%37, k%3))
		if _, err := c.nodes[k%3].Client(clock.Epoch2000.Add(time.Duration(k)*time.Second), s, broadcast(fmt.Sprint(k))); err != nil {
			t.Fatal(err)
		}
	}
	c.settle(c.nodes...)
	var compacted int64
	deadline := time.Now().Add(10 * time.Second)
	for compacted == 0 && time.Now().Before(deadline) {
		for _, n := range c.nodes {
			compacted = max(compacted, n.Stats().Compacted)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if compacted == 0 {
		t.Fatal("no node compacted etcd within 10 s")
	}
	// More changes after the snapshot, which the new node replays.
	for k := range 10 {
		s := stanza.MustParse(fmt.Sprintf("late%d@capulet.com/r", k))
		if _, err := c.nodes[0].Client(clock.Epoch2000.Add(time.Hour), s, broadcast("late")); err != nil {
			t.Fatal(err)
		}
	}
	late := c.startNode(3, nil)
	c.settle(append(c.nodes[:3:3], late)...)
	if st := late.Stats(); st.LoadedFromEtcd != 1 {
		t.Errorf("the new node loaded %d snapshots from etcd, want 1 (compacted at %d)", st.LoadedFromEtcd, compacted)
	}
	want := c.nodes[0].Snapshot(nil)
	if got := late.Snapshot(nil); !bytes.Equal(got, want) {
		t.Errorf("the new node's durable state differs from node 0's")
	}
}

// TestQuorumLoss: with two of three members stopped, a change is not
// acknowledged (ErrNotCommitted) but probes are still answered from the
// last applied state.
func TestQuorumLoss(t *testing.T) {
	c := startCluster(t, func(i int, cfg *Config) { cfg.WriteTimeout = 2 * time.Second })
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	n := c.nodes[0]
	if err := n.SetRoster(romeo.Bare(), stanza.MustParse("juliet@capulet.com"), core.SubBoth); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client(clock.Epoch2000, romeo, broadcast("dnd")); err != nil {
		t.Fatal(err)
	}
	c.nodes[1].Stop()
	c.nodes[2].Stop()
	// Each Close waits about 7 s for the gRPC streams other clients hold
	// on the member (etcd's graceful stop): close both at once.
	var wg sync.WaitGroup
	for _, e := range c.members[1:] {
		c.stopped[e] = true
		wg.Add(1)
		go func() { defer wg.Done(); e.Close() }()
	}
	wg.Wait()
	start := time.Now()
	_, err := n.Client(clock.Epoch2000.Add(time.Minute), romeo, broadcast("chat"))
	if !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("a change without quorum: got %v, want ErrNotCommitted", err)
	}
	t.Logf("refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
	out, err := n.Server(clock.Epoch2000.Add(2*time.Minute), []byte(`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe'/>`))
	if err != nil || len(out) != 1 || !bytes.Contains(out[0].Stanza, []byte("<show>dnd</show>")) {
		t.Fatalf("a probe without quorum: %s, %v; want the last applied presence", outputStrings(out), err)
	}
}

// TestRestartBehindCompaction: a node stopped for a while restarts from its
// local snapshot, finds the log after it compacted away, loads the
// published snapshot instead and replays the rest.
func TestRestartBehindCompaction(t *testing.T) {
	dataDir := t.TempDir()
	c := startCluster(t, func(i int, cfg *Config) {
		if i == 2 {
			cfg.DataDir = dataDir
		}
	})
	write := func(from, to int) {
		t.Helper()
		for k := from; k < to; k++ {
			s := stanza.MustParse(fmt.Sprintf("u%d@capulet.com/r", k%41))
			if _, err := c.nodes[k%2].Client(clock.Epoch2000.Add(time.Duration(k)*time.Second), s, broadcast(fmt.Sprint(k))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k := range 120 { // every node writes, so that node 3 snapshots locally
		s := stanza.MustParse(fmt.Sprintf("v%d@montague.com/r", k%13))
		if _, err := c.nodes[k%3].Client(clock.Epoch2000.Add(time.Duration(k)*time.Second), s, broadcast("v")); err != nil {
			t.Fatal(err)
		}
	}
	c.settle(c.nodes...)
	if st := c.nodes[2].Stats(); st.Snapshots == 0 {
		t.Fatalf("node 3 took no local snapshot: %+v", st)
	}
	if err := c.nodes[2].Stop(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := c.nodes[2].Applied()
	write(0, 300)
	c.settle(c.nodes[:2]...)
	deadline := time.Now().Add(10 * time.Second)
	for c.nodes[0].Stats().Compacted <= stoppedAt && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := c.nodes[0].Stats().Compacted; got <= stoppedAt {
		t.Fatalf("etcd compacted at %d, not past the stopped node's %d", got, stoppedAt)
	}
	back := c.startNode(2, func(i int, cfg *Config) { cfg.DataDir = dataDir })
	c.settle(c.nodes...)
	if st := back.Stats(); st.LoadedFromEtcd != 1 {
		t.Errorf("the restarted node loaded %d snapshots from etcd, want 1", st.LoadedFromEtcd)
	}
	if got, want := back.Snapshot(nil), c.nodes[0].Snapshot(nil); !bytes.Equal(got, want) {
		t.Error("the restarted node's durable state differs from node 0's")
	}
}
