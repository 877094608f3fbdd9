package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// applyLoop watches the log from the last applied revision and applies
// every event in revision order. A watch that breaks is reopened where it
// stopped; one that starts behind etcd's compaction loads the published
// snapshot first.
func (n *Node) applyLoop() {
	defer n.wg.Done()
	for gen := 0; n.ctx.Err() == nil; gen++ {
		n.watch(gen)
		n.sleep(50 * time.Millisecond)
	}
}

// watch runs one watch of the log until it breaks. Each watch gets a gRPC
// stream of its own (clientv3 shares one stream between watches with the
// same metadata), so that a new watch need not land on the member the last
// one hung on. A watchdog asks for a progress report every quarter of the
// lease TTL and gives the watch up when nothing arrived for half of it: a
// stream on a member that stopped answering would otherwise hang until
// gRPC keepalive noticed, at least 10 s later.
func (n *Node) watch(gen int) {
	ctx, cancel := context.WithCancel(n.ctx)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "lastseen-watch", strconv.Itoa(gen))
	n.mu.Lock()
	n.watchCtx = ctx // WaitApplied asks this watch's stream for progress
	n.mu.Unlock()
	var heard atomic.Int64
	heard.Store(time.Now().UnixNano())
	every := max(n.cfg.LeaseTTL/4, 100*time.Millisecond)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if time.Since(time.Unix(0, heard.Load())) > 2*every {
				cancel()
				return
			}
			_ = n.cli.RequestProgress(ctx)
		}
	}()
	from := n.applied.Load() + 1
	wch := n.cli.Watch(ctx, n.watchPrefix(), clientv3.WithPrefix(), clientv3.WithRev(from))
	for wr := range wch {
		heard.Store(time.Now().UnixNano())
		if wr.CompactRevision != 0 || errors.Is(wr.Err(), rpctypes.ErrCompacted) {
			if err := n.loadPublished(wr.CompactRevision); err != nil {
				n.sleep(200 * time.Millisecond)
			}
			return
		}
		if wr.Err() != nil {
			return
		}
		if wr.IsProgressNotify() {
			// Every event up to the header's revision was delivered:
			// revisions of keys outside the log (snapshots, reports)
			// count as applied too.
			if r := wr.Header.Revision; r > n.applied.Load() {
				n.advance(r)
			}
			continue
		}
		for _, ev := range wr.Events {
			n.applyEvent(ev)
		}
		if len(wr.Events) > 0 {
			n.advance(wr.Events[len(wr.Events)-1].Kv.ModRevision)
			if n.sinceSnap >= n.cfg.SnapshotEvery {
				n.snapshot()
			}
		}
	}
}

func (n *Node) sleep(d time.Duration) {
	select {
	case <-n.ctx.Done():
	case <-time.After(d):
	}
}

// advance publishes that the node applied the log up to rev.
func (n *Node) advance(rev int64) {
	n.st.rev = rev
	n.applied.Store(rev)
	n.mu.Lock()
	close(n.notify)
	n.notify = make(chan struct{})
	n.mu.Unlock()
}

func (n *Node) applyEvent(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	switch {
	case key == n.logKey() && ev.Type == mvccpb.PUT:
		n.sinceSnap++
		b, err := decodeBatch(ev.Kv.Value)
		if err != nil {
			return // every node skips it alike
		}
		n.mu.Lock()
		var reqs []*request
		if n.mine[b.writer] {
			reqs = n.pending[b.seq]
			delete(n.pending, b.seq)
			// Counted here, before any caller is answered, so that a
			// caller that reads Stats after its call sees its change.
			n.stats.Batches++
			n.stats.Entries += int64(len(b.entries))
		}
		n.mu.Unlock()
		for i := range b.entries {
			out, err := n.applyEntry(b.writer, &b.entries[i])
			if i < len(reqs) && reqs[i] != nil {
				reqs[i].done <- result{out, err}
			}
		}
	case strings.HasPrefix(key, n.memberPrefix()):
		if ev.Type == mvccpb.PUT {
			if _, ok := n.st.members[key]; !ok {
				n.st.members[key] = ev.Kv.CreateRevision
			}
			return
		}
		n.expire(key)
	}
}

// applyEntry applies one input at the cluster's time: the later of its
// stamp and every stamp applied before it, so that time never goes back
// when nodes' clocks disagree.
func (n *Node) applyEntry(writer string, e *entry) ([]core.Output, error) {
	n.st.clock = max(n.st.clock, e.stamp)
	now := n.st.clock
	switch e.kind {
	case kindClient:
		session, err := stanza.Parse(e.jid)
		if err != nil {
			return nil, err
		}
		out, err := n.m.Client(now, session, e.raw)
		if err != nil {
			return nil, err
		}
		var pres stanza.Presence
		var iq stanza.IQ
		if isIQ, err := n.parser.ParseStanza(e.raw, &pres, &iq); err == nil && !isIQ {
			if pres.Type == stanza.Available {
				n.st.owners[session.String()] = writer
			} else {
				delete(n.st.owners, session.String())
			}
		}
		return out, nil
	case kindClose:
		session, err := stanza.Parse(e.jid)
		if err != nil {
			return nil, err
		}
		delete(n.st.owners, session.String())
		return n.m.Close(now, session)
	case kindUp, kindDown:
		jid, err := stanza.Parse(e.jid)
		if err != nil {
			return nil, err
		}
		if e.kind == kindUp {
			return n.m.Up(now, jid)
		}
		return n.m.Down(now, jid)
	case kindLimit:
		return nil, n.m.SetProbeLimit(now, e.limit)
	}
	return nil, fmt.Errorf("%w: entry kind %d", ErrCorrupt, e.kind)
}

// expire applies the end of a membership (its lease expired, it was
// revoked, or its node restarted): that node's sessions go offline, at the
// cluster's time, on every node at the same position of the log. This is
// the restart rule for one node of many: nobody stays online on a node
// that is gone, and their last-seen time is the latest change the cluster
// had applied before the expiry.
func (n *Node) expire(member string) {
	if _, ok := n.st.members[member]; !ok {
		return
	}
	delete(n.st.members, member)
	closed := 0
	for _, s := range n.st.sessionsOf(member) {
		delete(n.st.owners, s)
		if session, err := stanza.Parse(s); err == nil {
			if _, err := n.m.Close(n.st.clock, session); err == nil {
				closed++
			}
		}
	}
	n.mu.Lock()
	n.stats.ExpiryClosed += int64(closed)
	if n.member == member {
		n.member = "" // our own lease is gone: refuse writes until Rejoin
	}
	n.mu.Unlock()
}

// encodeSnapshot encodes the node's state at the revision it applied.
// It runs on the apply goroutine, between two events.
func (n *Node) encodeSnapshot() []byte {
	return appendSnapshot(nil, &n.st, n.m.ProbeLimit(), n.m.Snapshot(nil))
}

// restore replaces the node's state with a snapshot's.
func (n *Node) restore(snap []byte) error {
	r, limit, machine, err := decodeSnapshot(snap)
	if err != nil {
		return err
	}
	if err := n.m.Restore(machine); err != nil {
		return err
	}
	if err := n.m.SetProbeLimit(r.clock, limit); err != nil {
		return err
	}
	n.st = r
	n.sinceSnap = 0
	n.advance(r.rev)
	return nil
}

// snapshot saves the state locally, reports the applied revision, and, on
// the oldest member, publishes the snapshot in etcd and compacts behind it.
func (n *Node) snapshot() {
	n.sinceSnap = 0
	snap := n.encodeSnapshot()
	if n.cfg.DataDir != "" {
		_ = writeFileAtomic(filepath.Join(n.cfg.DataDir, n.cfg.NodeID+".snap"), snap)
	}
	n.mu.Lock()
	n.stats.Snapshots++
	member, lease := n.member, n.lease
	n.mu.Unlock()
	if member == "" {
		return
	}
	rev := n.st.rev
	publish := n.st.oldest() == member
	if publish && !n.publishing.CompareAndSwap(false, true) {
		publish = false
	}
	// Etcd round trips leave the apply goroutine free. The apply goroutine
	// is itself counted in wg, so this Add cannot race Stop's Wait.
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.WriteTimeout)
		defer cancel()
		if _, err := n.cli.Put(ctx, n.appliedKey(member), strconv.FormatInt(rev, 10), clientv3.WithLease(lease)); err != nil || !publish {
			if publish {
				n.publishing.Store(false)
			}
			return
		}
		defer n.publishing.Store(false)
		if err := n.publish(ctx, rev, snap); err != nil {
			return
		}
		if !n.cfg.NoCompact {
			n.compact(ctx, rev)
		}
	}()
}

func (n *Node) snapPrefix() string { return n.prefix + "s/" }

func (n *Node) chunkPrefix(rev int64) string {
	return fmt.Sprintf("%s%016x/", n.snapPrefix(), rev)
}

// publish writes snap in chunks under its revision, then points the meta
// key at it, then deletes older snapshots. A reader that finds chunks
// missing (deleted under it) reads the meta key again.
func (n *Node) publish(ctx context.Context, rev int64, snap []byte) error {
	p := n.chunkPrefix(rev)
	chunks := 0
	for off := 0; off < len(snap); off += snapChunk {
		end := min(off+snapChunk, len(snap))
		if _, err := n.cli.Put(ctx, fmt.Sprintf("%s%06d", p, chunks), string(snap[off:end])); err != nil {
			return err
		}
		chunks++
	}
	meta := n.snapPrefix() + "meta"
	val := fmt.Sprintf("%s %d %d", metaFloor(rev), chunks, crc32Sum(snap))
	// Only ever move the published snapshot forward.
	resp, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(meta), "<", metaFloor(rev))).
		Then(clientv3.OpPut(meta, val)).Else(clientv3.OpGet(meta)).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		if g := resp.Responses[0].GetResponseRange(); g != nil && len(g.Kvs) == 1 {
			return nil // an equal or newer one is published
		}
		// No meta key yet: Value compares fail on a missing key.
		if _, err := n.cli.Put(ctx, meta, val); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.stats.Published++
	n.mu.Unlock()
	// Older snapshots: every key under snapPrefix that sorts before p,
	// leaving meta (which sorts after the hex revisions).
	_, err = n.cli.Delete(ctx, n.snapPrefix(), clientv3.WithRange(p))
	return err
}

// metaFloor is rev in decimal padded to 20 digits: meta values start with
// it, so that etcd's byte-wise "<" on values compares revisions.
func metaFloor(rev int64) string { return fmt.Sprintf("%020d", rev) }

// compact compacts etcd at the oldest revision any live node reported
// applied, if that is not past the published snapshot.
func (n *Node) compact(ctx context.Context, snapRev int64) {
	resp, err := n.cli.Get(ctx, n.prefix+"a/", clientv3.WithPrefix())
	if err != nil {
		return
	}
	at := snapRev
	for _, kv := range resp.Kvs {
		if v, err := strconv.ParseInt(string(kv.Value), 10, 64); err == nil && v < at {
			at = v
		}
	}
	n.mu.Lock()
	last := n.stats.Compacted
	n.mu.Unlock()
	if at <= last || at <= 1 {
		return
	}
	if _, err := n.cli.Compact(ctx, at); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return
	}
	n.mu.Lock()
	n.stats.Compacted = at
	n.mu.Unlock()
}

// loadPublished loads the snapshot published in etcd, which must reach at
// least rev (the compaction that left this node behind).
func (n *Node) loadPublished(rev int64) error {
	for try := 0; try < 5; try++ {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.WriteTimeout)
		snap, err := n.readPublished(ctx)
		cancel()
		if err == nil {
			r, _, _, derr := decodeSnapshot(snap)
			if derr != nil || r.rev < rev || r.rev <= n.applied.Load() {
				return fmt.Errorf("%w: published snapshot at %d does not reach %d", ErrCorrupt, r.rev, rev)
			}
			if err := n.restore(snap); err != nil {
				return err
			}
			n.mu.Lock()
			n.stats.LoadedFromEtcd++
			n.mu.Unlock()
			return nil
		}
		n.sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%w: could not read the published snapshot", ErrCorrupt)
}

// readPublished reads the published snapshot's chunks and checks them
// whole.
func (n *Node) readPublished(ctx context.Context) ([]byte, error) {
	resp, err := n.cli.Get(ctx, n.snapPrefix()+"meta")
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%w: no snapshot published", ErrCorrupt)
	}
	f := strings.Fields(string(resp.Kvs[0].Value))
	if len(f) != 3 {
		return nil, fmt.Errorf("%w: snapshot meta %q", ErrCorrupt, resp.Kvs[0].Value)
	}
	rev, err1 := strconv.ParseInt(f[0], 10, 64)
	chunks, err2 := strconv.Atoi(f[1])
	sum, err3 := strconv.ParseUint(f[2], 10, 32)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("%w: snapshot meta: %v", ErrCorrupt, err)
	}
	cr, err := n.cli.Get(ctx, n.chunkPrefix(rev), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	if len(cr.Kvs) != chunks {
		return nil, fmt.Errorf("%w: snapshot at %d has %d of %d chunks", ErrCorrupt, rev, len(cr.Kvs), chunks)
	}
	var snap []byte
	for _, kv := range cr.Kvs {
		snap = append(snap, kv.Value...)
	}
	if uint64(crc32Sum(snap)) != sum {
		return nil, fmt.Errorf("%w: snapshot at %d: checksum mismatch", ErrCorrupt, rev)
	}
	return snap, nil
}

// loadLocal loads the node's own snapshot from DataDir, if there is one.
func (n *Node) loadLocal() error {
	snap, err := os.ReadFile(filepath.Join(n.cfg.DataDir, n.cfg.NodeID+".snap"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return n.restore(snap)
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
