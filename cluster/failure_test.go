//go:build unix

package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ack is a change a node acknowledged.
type ack struct {
	node    int
	session string
	raw     string
}

// stream writes broadcasts on node c for sessions named after it until
// stop is closed, and returns what was acknowledged. Calls to a node that
// is gone fail and end its stream.
func stream(c *child, stop <-chan struct{}, users int, acks chan<- ack, start clock.Time) {
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		default:
		}
		s := fmt.Sprintf("s%d@montague.com/m%d", k%users, c.idx)
		raw := fmt.Sprintf("<presence><show>k%d</show></presence>", k)
		r, err := c.call("/client", clientQ(s, start.Add(time.Duration(k)*time.Millisecond)), []byte(raw))
		if err != nil {
			return
		}
		if r.Err == "" {
			acks <- ack{c.idx, s, raw}
		}
	}
}

// TestChildProcesses runs the failure scenarios on three node processes,
// one after the other on the same cluster: equal state and equal probe
// replies; SIGKILL of a node mid-stream; its restart and catch-up;
// SIGSTOP past its lease and SIGCONT; and the loss of two members.
func TestChildProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the child-process cluster takes about 30 s")
	}
	dir := t.TempDir()
	members := clusterSpecs(t, dir, 3)
	specs := make([]childSpec, 3)
	for i := range specs {
		specs[i] = childSpec{Index: i, Members: members, DataDir: fmt.Sprintf("%s/node%d", dir, i)}
	}
	t0 := time.Now()
	cs := startChildren(t, specs, 0, 1, 2)
	t.Logf("three children ready in %v", time.Since(t0).Round(time.Millisecond))
	cli := newClient(t, endpoints(members))
	rec := recordLog(t, cli)
	base := clock.Epoch2000

	// settle waits until each live child applied the newest revision, and
	// returns it.
	settle := func(live ...*child) int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, "/t/w/log")
		if err != nil {
			t.Fatal(err)
		}
		rev := resp.Header.Revision
		for _, c := range live {
			if r := c.must("/wait", url.Values{"rev": {fmt.Sprint(rev)}}, nil); r.Err != "" {
				t.Fatalf("child %d: %s", c.idx, r.Err)
			}
		}
		return rev
	}
	// sameState checks that the live children's AppendState is byte for
	// byte the reference machine's (the test sends no client probes, so
	// no node has rate-limit buckets).
	sameState := func(what string, live ...*child) {
		t.Helper()
		rev := settle(live...)
		ref, _, _ := replayEvents(t, rec.upTo(t, rev))
		want := ref.AppendState(nil)
		for _, c := range live {
			if got := c.must("/state", nil, nil).State; !bytes.Equal(got, want) {
				t.Errorf("%s: child %d's state differs from the single machine fed the log (%d vs %d bytes)", what, c.idx, len(got), len(want))
			}
		}
	}

	// 1. Concurrent streams on all three nodes.
	stop := make(chan struct{})
	acks := make(chan ack, 100000)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); stream(c, stop, 5, acks, base) }()
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	sameState("concurrent streams", cs...)
	for _, c := range cs {
		c.must("/roster", url.Values{"owner": {"s1@montague.com"}, "contact": {"juliet@capulet.com"}}, nil)
	}
	probe := []byte(`<presence from='juliet@capulet.com/balcony' to='s1@montague.com' type='probe' id='p'/>`)
	var replies []string
	for _, c := range cs {
		r := c.must("/server", url.Values{"now": {fmt.Sprint(int64(base.Add(time.Hour)))}}, probe)
		replies = append(replies, strings.Join(r.Out, "\n"))
	}
	if replies[0] == "" || replies[1] != replies[0] || replies[2] != replies[0] {
		t.Errorf("the same probe on three nodes:\n%s", strings.Join(replies, "\n--\n"))
	}

	// 2. SIGKILL node 2 mid-stream.
	stop = make(chan struct{})
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); stream(c, stop, 5, acks, base.Add(time.Minute)) }()
	}
	time.Sleep(700 * time.Millisecond)
	victim := cs[2]
	before := victim.must("/stats", nil, nil)
	victim.kill()
	killedAt := time.Now()
	// Node 2 applied at most what etcd held when it died.
	var killRev int64
	{
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.Get(ctx, "/t/w/log")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		killRev = resp.Header.Revision
	}
	time.Sleep(700 * time.Millisecond) // the others go on
	close(stop)
	wg.Wait()
	close(acks)
	live := cs[:2]
	// The expiry reaches the others within the lease TTL plus an election.
	deadline := time.Now().Add(20 * time.Second)
	var closed [2]int64
	for time.Now().Before(deadline) {
		for i, c := range live {
			closed[i] = c.must("/stats", nil, nil).Stats.ExpiryClosed
		}
		if closed[0] > 0 && closed[1] > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("SIGKILL: expiry applied %v after the kill (lease TTL 2 s)", time.Since(killedAt).Round(100*time.Millisecond))
	rev := settle(live...)
	ref, _, inLog := replayEvents(t, rec.upTo(t, rev))
	lost, n := 0, 0
	for a := range acks {
		n++
		if !inLog[logged{a.session, a.raw}] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged changes are not in the log", lost, n)
	}
	t.Logf("SIGKILL: %d acknowledged changes, all in the log; node 2 had acknowledged %d batches before the kill", n, before.Stats.Batches)
	// Node 2's sessions (s0..s4 on /m2) were available: each is closed
	// exactly once on each survivor, and offline there.
	for i, c := range live {
		if closed[i] != 5 {
			t.Errorf("child %d closed %d of node 2's sessions on its expiry, want 5 (each exactly once)", c.idx, closed[i])
		}
	}
	want := ref.AppendState(nil)
	for _, c := range live {
		if got := c.must("/state", nil, nil).State; !bytes.Equal(got, want) {
			t.Errorf("after SIGKILL: child %d's state differs from the single machine fed the log", c.idx)
		}
	}
	for _, c := range live {
		for u := range 5 {
			r := c.must("/server", url.Values{"now": {fmt.Sprint(int64(base.Add(time.Hour)))}},
				[]byte(fmt.Sprintf(`<presence from='juliet@capulet.com/b' to='s%d@montague.com' type='probe'/>`, u)))
			if strings.Contains(strings.Join(r.Out, ""), "montague.com/m2'><show>") {
				t.Errorf("child %d still shows s%d@montague.com/m2 online: %v", c.idx, u, r.Out)
			}
		}
	}

	// 3. Restart node 2: it catches up to byte-identical state. First the
	// survivors go on until the oldest of them has published a snapshot
	// and compacted etcd past what node 2 had applied (it may have been
	// the publisher itself), so that its local snapshot is too old and it
	// must load the published one. (Unavailable broadcasts: they leave no
	// session online that step 4 would count.)
	var compacted int64
	deadline = time.Now().Add(15 * time.Second)
	for k := 0; compacted <= killRev && time.Now().Before(deadline); k++ {
		c := live[k%2]
		if r := c.must("/client", clientQ(fmt.Sprintf("late%d@capulet.com/m%d", k%7, c.idx), base.Add(90*time.Second)), unavailable); r.Err != "" {
			t.Fatal(r.Err)
		}
		if k%20 == 0 {
			for _, c := range live {
				compacted = max(compacted, c.must("/stats", nil, nil).Stats.Compacted)
			}
		}
	}
	if compacted <= killRev {
		t.Fatalf("etcd not compacted past revision %d (node 2's death) within 15 s (at %d)", killRev, compacted)
	}
	t.Logf("restart: node 2 died at revision %d or before; etcd compacted at %d", killRev, compacted)
	t0 = time.Now()
	restarted := startChildren(t, specs, 2)[0]
	cs[2] = restarted
	sameState("after the restart", cs...)
	st := restarted.must("/stats", nil, nil).Stats
	t.Logf("restart: node 2 back and caught up in %v", time.Since(t0).Round(time.Millisecond))
	if st.LoadedFromEtcd != 1 {
		t.Errorf("the restarted node loaded %d published snapshots, want 1 (its own is behind the compaction)", st.LoadedFromEtcd)
	}
	// Its local snapshot predates the kill: replaying the log after it,
	// it applies its own previous incarnation's expiry, as every node did.
	if st.ExpiryClosed > 5 {
		t.Errorf("the restarted node closed %d sessions on the expiry it replayed, want at most its 5", st.ExpiryClosed)
	}

	// 4. SIGSTOP node 1 past its lease, then SIGCONT.
	paused := cs[1]
	for u := range 3 {
		s := fmt.Sprintf("p%d@capulet.com/m1", u)
		if r := paused.must("/client", clientQ(s, base.Add(2*time.Minute)), []byte(`<presence/>`)); r.Err != "" {
			t.Fatal(r.Err)
		}
	}
	others := []*child{cs[0], cs[2]}
	was := make([]int64, 2)
	for i, c := range others {
		was[i] = c.must("/stats", nil, nil).Stats.ExpiryClosed
	}
	leader := "?"
	{
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if st, err := cli.Status(ctx, members[1].clientURL()); err == nil {
			leader = fmt.Sprint(st.Header.MemberId == st.Leader)
		}
		cancel()
	}
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	deadline = time.Now().Add(20 * time.Second)
	expired := false
	for !expired && time.Now().Before(deadline) {
		expired = true
		for i, c := range others {
			// Its 5 sessions of the streams and the 3 above.
			if c.must("/stats", nil, nil).Stats.ExpiryClosed < was[i]+8 {
				expired = false
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !expired {
		for _, c := range others {
			r := c.must("/stats", nil, nil)
			t.Logf("child %d: %+v applied %d member %s (was %v)", c.idx, r.Stats, r.Applied, r.Member, was)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := cli.Get(ctx, "/t/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		cancel()
		if err == nil {
			for _, kv := range resp.Kvs {
				t.Logf("key %s lease %x", kv.Key, kv.Lease)
			}
		}
		paused.cmd.Process.Signal(syscall.SIGCONT)
		t.Fatal("the paused node's sessions were not closed within 20 s")
	}
	t.Logf("SIGSTOP: the others closed its 8 sessions %v after the pause (its member was the leader: %s)", time.Since(stoppedAt).Round(100*time.Millisecond), leader)
	for i, c := range others {
		if got := c.must("/stats", nil, nil).Stats.ExpiryClosed - was[i]; got != 8 {
			t.Errorf("child %d closed %d of the paused node's sessions, want 8 (each exactly once)", c.idx, got)
		}
	}
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r := paused.must("/client", clientQ("p0@capulet.com/m1", base.Add(3*time.Minute)), []byte(`<presence><show>back</show></presence>`))
	if r.Kind != "expired" {
		t.Fatalf("a write on the resumed node: got %q (%s), want it refused as expired", r.Kind, r.Err)
	}
	if r := paused.must("/rejoin", nil, nil); r.Err != "" {
		t.Fatalf("rejoin: %s", r.Err)
	}
	if r := paused.must("/client", clientQ("p0@capulet.com/m1", base.Add(3*time.Minute)), []byte(`<presence><show>back</show></presence>`)); r.Err != "" {
		t.Fatalf("a write after rejoining: %s", r.Err)
	}
	sameState("after SIGSTOP, SIGCONT and rejoin", cs...)

	// 5. Two of three members gone: changes are not acknowledged, probes
	// are still answered from the last applied state.
	alone := cs[1]
	cs[0].kill()
	cs[2].kill()
	t0 = time.Now()
	r = alone.must("/client", clientQ("p1@capulet.com/m1", base.Add(4*time.Minute)), []byte(`<presence><show>lost</show></presence>`))
	if r.Kind != "notcommitted" {
		t.Fatalf("a write without quorum: got %q (%s), want ErrNotCommitted", r.Kind, r.Err)
	}
	t.Logf("quorum loss: refused after %v: %s", time.Since(t0).Round(time.Millisecond), r.Err)
	alone.must("/roster", url.Values{"owner": {"p0@capulet.com"}, "contact": {"juliet@capulet.com"}}, nil)
	r = alone.must("/server", url.Values{"now": {fmt.Sprint(int64(base.Add(time.Hour)))}},
		[]byte(`<presence from='juliet@capulet.com/b' to='p0@capulet.com' type='probe'/>`))
	if len(r.Out) != 1 || !strings.Contains(r.Out[0], "<show>back</show>") {
		t.Errorf("a probe without quorum: %v %s; want the last applied presence", r.Out, r.Err)
	}
}
