package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config configures a Node.
type Config struct {
	// Client reaches the etcd cluster; the host owns it and closes it after
	// Stop. Required.
	Client *clientv3.Client
	// Prefix is where the cluster keeps its keys in etcd; every node of one
	// cluster uses the same. Empty means "/lastseen/".
	Prefix string
	// NodeID names this node, unique in the cluster; it may not contain
	// '/'. A node restarted under the same ID takes over from its previous
	// incarnation (whose sessions are closed at once). Required.
	NodeID string
	// Core configures the local machine, as for core.NewSharded; every node
	// needs the same Served domains and limits for the nodes to agree.
	// Core.Journal must be false: the log is the journal.
	Core core.Config
	// Shards is the local machine's shard count, as for core.NewSharded.
	Shards int
	// LeaseTTL is how long the cluster waits for a silent node before it
	// closes that node's sessions. Zero means 10 s; etcd's minimum applies.
	LeaseTTL time.Duration
	// WriteTimeout bounds how long a change waits to be committed and
	// applied locally; past it the change returns ErrNotCommitted. Zero
	// means 5 s.
	WriteTimeout time.Duration
	// MaxBatch caps the inputs of one log entry; zero means 512. Batches
	// are also kept under 1 MiB, below etcd's default request limit.
	MaxBatch int
	// DataDir, if not empty, holds this node's local snapshot, so that a
	// restart replays only the log after it.
	DataDir string
	// SnapshotEvery is how many applied log entries a node waits between
	// snapshots; zero means 10,000. The oldest live node publishes its
	// snapshots in etcd, and compacts etcd behind what every node needs,
	// unless NoCompact is set.
	SnapshotEvery int
	// NoCompact leaves etcd's compaction to its operator (for example an
	// etcd cluster shared with jackal, compacted by --auto-compaction-*).
	NoCompact bool
}

// Node is one lastseen machine of a cluster: it offers the host the calls of
// core.Sharded. Inputs that change durable state (presence broadcasts,
// session ends, up and down, the probe limit) are appended to a log in
// etcd, and every node applies that log in order, so that every node holds
// the same state; probes and Last Activity queries are answered from the
// local machine, at its speed. A call that changes state returns once its
// change is committed and applied on this node, with the outputs of
// applying it.
//
// Rate-limit buckets stay on the node that holds the session. Roster,
// blocks and hidden flags live in the Authorizer, which every node must
// read alike (a host's shared roster storage, or the same facts set on
// every node): they are not in the log.
type Node struct {
	cfg    Config
	cli    *clientv3.Client
	m      *core.Sharded
	prefix string

	in     chan *request // to the writer
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	applied atomic.Int64  // the last revision applied
	notify  chan struct{} // closed and replaced whenever applied moves; under mu

	mu      sync.Mutex
	member  string // current member key; "" when expired
	lease   clientv3.LeaseID
	mine    map[string]bool // every member key this Node has held
	pending map[uint64][]*request
	seq     uint64
	// watchCtx is the context of the current watch of the log: progress
	// requests go to the stream it selects.
	watchCtx context.Context
	stats    Stats

	// Used by the apply goroutine only.
	st         replicated
	parser     stanza.Parser
	sinceSnap  int
	publishing atomic.Bool
}

// Stats counts what a node did, for tests and monitoring.
type Stats struct {
	Batches        int64 // log entries this node appended and applied
	Entries        int64 // inputs in them, each acknowledged to its caller
	Refused        int64 // batches refused because the node's lease was gone
	ExpiryClosed   int64 // sessions this node closed on applying node expiries
	Snapshots      int64 // local snapshots taken
	Published      int64 // snapshots published in etcd
	Compacted      int64 // the last revision this node compacted etcd at
	LoadedFromEtcd int64 // snapshots loaded from etcd to catch up
}

type request struct {
	e    entry
	done chan result // buffered: whoever answers never blocks
}

type result struct {
	out []core.Output
	err error
}

const (
	defaultPrefix   = "/lastseen/"
	maxBatchBytes   = 1 << 20
	snapChunk       = 1 << 20
	defaultSnapshot = 10000
)

// Keys, under the prefix p:
//
//	p/w/log                  the log: one Put per batch
//	p/w/m/<node>/<lease>     a member, attached to its lease
//	p/a/<node>/<lease>       the revision that member last reported applied
//	p/s/meta                 the published snapshot: revision, chunks, CRC
//	p/s/<rev>/<i>            its chunks
//
// Node joins and expiries are under p/w/ with the log, so that they are
// events of the one ordered history every node applies.
func (n *Node) logKey() string       { return n.prefix + "w/log" }
func (n *Node) watchPrefix() string  { return n.prefix + "w/" }
func (n *Node) memberPrefix() string { return n.prefix + "w/m/" }
func (n *Node) appliedKey(m string) string {
	return n.prefix + "a/" + strings.TrimPrefix(m, n.memberPrefix())
}

// Start starts a node: it loads its local snapshot if any (or the one
// published in etcd if the log it needs was compacted), joins the cluster
// with a fresh lease, and returns once it has applied the log up to its
// own join.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Client == nil || cfg.NodeID == "" || strings.Contains(cfg.NodeID, "/") {
		return nil, fmt.Errorf("%w: needs a Client and a NodeID without '/'", ErrConfig)
	}
	if cfg.Core.Journal {
		return nil, fmt.Errorf("%w: Core.Journal must be false (the log is the journal)", ErrConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = defaultSnapshot
	}
	m, err := core.NewSharded(cfg.Core, cfg.Shards)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, cli: cfg.Client, m: m, prefix: cfg.Prefix,
		in:      make(chan *request, 4096),
		notify:  make(chan struct{}),
		mine:    make(map[string]bool),
		pending: make(map[uint64][]*request),
		st:      newReplicated(),
		parser:  stanza.Parser{Limits: cfg.Core.Limits},
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, err
		}
		if err := n.loadLocal(); err != nil {
			return nil, err
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(2)
	go n.applyLoop()
	go n.writeLoop()
	if err := n.Rejoin(ctx); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

// Rejoin makes the node a member again after its lease expired (ErrExpired):
// it takes a fresh lease and returns once it has applied the log up to its
// new membership. Sessions the cluster closed when the old lease expired
// stay closed: the host has its clients send their presence again. Start
// calls Rejoin; calling it while a member ends the current membership
// first, closing its sessions.
func (n *Node) Rejoin(ctx context.Context) error {
	// A previous incarnation of this node ID (a crash before its lease
	// expired, or the current membership) is dead by definition: deleting
	// its key is the expiry entry that closes its sessions everywhere, now
	// rather than a TTL later.
	if _, err := n.cli.Delete(ctx, n.memberPrefix()+n.cfg.NodeID+"/", clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("%w: removing the previous membership: %v", ErrNotCommitted, err)
	}
	ttl := int64((n.cfg.LeaseTTL + time.Second - 1) / time.Second)
	lg, err := n.cli.Grant(ctx, ttl)
	if err != nil {
		return fmt.Errorf("%w: lease grant: %v", ErrNotCommitted, err)
	}
	key := n.memberPrefix() + n.cfg.NodeID + "/" + strconv.FormatInt(int64(lg.ID), 16)
	resp, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(
		clientv3.OpPut(key, "", clientv3.WithLease(lg.ID)),
		clientv3.OpPut(n.appliedKey(key), strconv.FormatInt(n.applied.Load(), 10), clientv3.WithLease(lg.ID)),
	).Commit()
	if err != nil {
		return fmt.Errorf("%w: join: %v", ErrNotCommitted, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: member key %s already exists", ErrConfig, key)
	}
	n.mu.Lock()
	n.mine[key] = true
	n.mu.Unlock()
	if err := n.WaitApplied(ctx, resp.Header.Revision); err != nil {
		return err
	}
	n.mu.Lock()
	n.member, n.lease = key, lg.ID
	n.mu.Unlock()
	n.wg.Add(1)
	go n.keepAlive(lg.ID)
	return nil
}

// keepAlive renews the lease until the node stops or the lease is gone.
// It renews with one short call at a time, each bounded by a quarter of
// the TTL, rather than clientv3's long-lived keepalive stream: a stream on
// a member that stopped answering (paused, partitioned) is noticed only by
// gRPC keepalive, which waits at least 10 s, and the lease would expire
// meanwhile although two members were healthy; a failed call is retried at
// once and goes to the next member. It does not itself declare the node
// expired: only the log (the Delete of the member key) or a refused write
// does, so that a lost quorum reads as ErrNotCommitted, not as an expiry.
func (n *Node) keepAlive(id clientv3.LeaseID) {
	defer n.wg.Done()
	every := max(n.cfg.LeaseTTL/4, 100*time.Millisecond)
	for n.ctx.Err() == nil {
		n.mu.Lock()
		current := n.lease == id && n.member != ""
		n.mu.Unlock()
		if !current {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, every)
		_, err := n.cli.KeepAliveOnce(ctx, id)
		cancel()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return // the expiry entry follows in the log
		}
		if err != nil {
			n.sleep(20 * time.Millisecond)
			continue
		}
		n.sleep(every)
	}
}

// Stop ends the node: it revokes its lease, so that the cluster closes its
// sessions at once, and stops applying the log. Calls after Stop return
// ErrStopped. The etcd client is the host's to close.
func (n *Node) Stop() error {
	n.mu.Lock()
	lease, member := n.lease, n.member
	n.member = ""
	n.mu.Unlock()
	var err error
	if member != "" {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.WriteTimeout)
		_, err = n.cli.Revoke(ctx, lease)
		cancel()
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	return err
}

// Applied returns the last log revision this node has applied.
func (n *Node) Applied() int64 { return n.applied.Load() }

// WaitApplied returns once the node has applied the log up to rev, or when
// ctx is done. Revision rev may be any etcd revision: when it is not an
// event of the log, the node asks etcd for a progress report on its watch.
func (n *Node) WaitApplied(ctx context.Context, rev int64) error {
	for {
		n.mu.Lock()
		ch, wctx := n.notify, n.watchCtx
		n.mu.Unlock()
		if n.applied.Load() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(20 * time.Millisecond):
			if wctx != nil {
				_ = n.cli.RequestProgress(wctx)
			}
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for revision %d (applied %d): %w", rev, n.applied.Load(), ctx.Err())
		case <-n.ctx.Done():
			return ErrStopped
		}
	}
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Member returns the node's current member key in etcd, or "" while its
// lease is expired.
func (n *Node) Member() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.member
}

// submit appends e to the log and waits until this node applied it.
func (n *Node) submit(e entry) ([]core.Output, error) {
	if n.ctx.Err() != nil {
		return nil, ErrStopped
	}
	if n.Member() == "" {
		return nil, ErrExpired
	}
	r := &request{e: e, done: make(chan result, 1)}
	// The writer's transaction times out after WriteTimeout and reports
	// etcd's error; the grace second lets that error, rather than this
	// timer, answer.
	t := time.NewTimer(n.cfg.WriteTimeout + time.Second)
	defer t.Stop()
	select {
	case n.in <- r:
	case <-t.C:
		return nil, fmt.Errorf("%w: the writer is busy", ErrNotCommitted)
	case <-n.ctx.Done():
		return nil, ErrStopped
	}
	select {
	case res := <-r.done:
		return res.out, res.err
	case <-t.C:
		n.forget(r)
		return nil, fmt.Errorf("%w: not committed and applied within %v", ErrNotCommitted, n.cfg.WriteTimeout)
	case <-n.ctx.Done():
		return nil, ErrStopped
	}
}

// forget drops a request whose caller gave up; if its batch is applied
// later, its results are discarded.
func (n *Node) forget(r *request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for seq, rs := range n.pending {
		for i := range rs {
			if rs[i] == r {
				rs[i] = nil
				n.pending[seq] = rs
				return
			}
		}
	}
}

// writeLoop appends batches: group commit. While one transaction is in
// flight, the inputs that arrive queue up and go together in the next.
func (n *Node) writeLoop() {
	defer n.wg.Done()
	var buf []byte
	for {
		var first *request
		select {
		case first = <-n.in:
		case <-n.ctx.Done():
			return
		}
		reqs := []*request{first}
		size := len(first.e.raw) + len(first.e.jid)
	drain:
		for len(reqs) < n.cfg.MaxBatch && size < maxBatchBytes/2 {
			select {
			case r := <-n.in:
				reqs = append(reqs, r)
				size += len(r.e.raw) + len(r.e.jid) + 16
			default:
				break drain
			}
		}
		buf = n.commit(reqs, buf[:0])
	}
}

// commit appends one batch, guarded on this node's member key: once the
// lease is gone, etcd refuses the batch.
func (n *Node) commit(reqs []*request, buf []byte) []byte {
	n.mu.Lock()
	member := n.member
	n.seq++
	seq := n.seq
	if member != "" {
		n.pending[seq] = reqs
	}
	n.mu.Unlock()
	if member == "" {
		fail(reqs, ErrExpired)
		return buf
	}
	b := batch{writer: member, seq: seq, entries: make([]entry, len(reqs))}
	for i, r := range reqs {
		b.entries[i] = r.e
	}
	buf = b.encode(buf)
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.WriteTimeout)
	resp, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(member), ">", 0)).
		Then(clientv3.OpPut(n.logKey(), string(buf))).Commit()
	cancel()
	if err == nil && resp.Succeeded {
		return buf // the apply loop answers, and counts the batch
	}
	n.mu.Lock()
	rs, ok := n.pending[seq]
	delete(n.pending, seq)
	if err == nil {
		n.stats.Refused++
		if n.member == member {
			n.member = ""
		}
	}
	n.mu.Unlock()
	if !ok {
		return buf // applied meanwhile (a reply lost after the commit)
	}
	if err != nil {
		fail(rs, fmt.Errorf("%w: %v", ErrNotCommitted, err))
	} else {
		fail(rs, ErrExpired)
	}
	return buf
}

func fail(reqs []*request, err error) {
	for _, r := range reqs {
		if r != nil {
			r.done <- result{err: err}
		}
	}
}

// The calls of core.Sharded.

// Client is core.Sharded.Client on the cluster. A presence broadcast (no to
// attribute, available or unavailable) changes durable state: it goes
// through the log, and Client returns once it is applied here. Everything
// else (probes, directed presence, Last Activity queries) is answered by
// the local machine.
func (n *Node) Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error) {
	var pres stanza.Presence
	var iq stanza.IQ
	p := stanza.Parser{Limits: n.cfg.Core.Limits}
	isIQ, err := p.ParseStanza(raw, &pres, &iq)
	if err != nil || isIQ || pres.To != nil || (pres.Type != stanza.Available && pres.Type != stanza.Unavailable) {
		return n.m.Client(now, session, raw) // the machine reports a parse error as it always does
	}
	if !n.m.Serves(session.Domain()) || session.IsBare() || !session.HasLocal() {
		return n.m.Client(now, session, raw) // refused, with the machine's error, before the log
	}
	return n.submit(entry{kind: kindClient, stamp: now, jid: session.String(), raw: raw})
}

// Server is core.Sharded.Server: it changes no durable state and is
// answered locally.
func (n *Node) Server(now clock.Time, raw []byte) ([]core.Output, error) {
	return n.m.Server(now, raw)
}

// Close is core.Sharded.Close on the cluster: the session's end goes
// through the log.
func (n *Node) Close(now clock.Time, session stanza.JID) ([]core.Output, error) {
	if !n.m.Serves(session.Domain()) || session.IsBare() || !session.HasLocal() {
		return n.m.Close(now, session)
	}
	return n.submit(entry{kind: kindClose, stamp: now, jid: session.String()})
}

// Up is core.Sharded.Up on the cluster. Its announcements are returned to
// the caller only: the other nodes apply the change and discard them.
func (n *Node) Up(now clock.Time, jid stanza.JID) ([]core.Output, error) {
	if badHost(jid) {
		return n.m.Up(now, jid) // refused, with the machine's error, before the log
	}
	return n.submit(entry{kind: kindUp, stamp: now, jid: jid.String()})
}

// badHost reports a JID that Up and Down refuse whatever the state.
func badHost(jid stanza.JID) bool { return jid.IsZero() || jid.HasLocal() || !jid.IsBare() }

// Down is core.Sharded.Down on the cluster.
func (n *Node) Down(now clock.Time, jid stanza.JID) ([]core.Output, error) {
	if badHost(jid) {
		return n.m.Down(now, jid)
	}
	return n.submit(entry{kind: kindDown, stamp: now, jid: jid.String()})
}

// SetProbeLimit is core.Sharded.SetProbeLimit on the cluster: the limit is
// the same on every node (buckets stay local).
func (n *Node) SetProbeLimit(now clock.Time, l core.RateLimit) error {
	if l.Burst < 1 || l.Per < 1 {
		return n.m.SetProbeLimit(now, l) // refused before the log
	}
	_, err := n.submit(entry{kind: kindLimit, stamp: now, limit: l})
	return err
}

// SetRoster is core.Sharded.SetRoster on this node's Authorizer only (see
// Node).
func (n *Node) SetRoster(owner, contact stanza.JID, sub core.Subscription) error {
	return n.m.SetRoster(owner, contact, sub)
}

// SetBlock is core.Sharded.SetBlock on this node's Authorizer only.
func (n *Node) SetBlock(owner, jid stanza.JID, blocked bool) error {
	return n.m.SetBlock(owner, jid, blocked)
}

// SetHidden is core.Sharded.SetHidden on this node's Authorizer only.
func (n *Node) SetHidden(owner stanza.JID, hidden bool) error {
	return n.m.SetHidden(owner, hidden)
}

// Auth returns the local machine's Authorizer.
func (n *Node) Auth() core.Authorizer { return n.m.Auth() }

// Serves reports whether domain is one of the served domains.
func (n *Node) Serves(domain string) bool { return n.m.Serves(domain) }

// ProbeLimit returns the client-probe rate limit.
func (n *Node) ProbeLimit() core.RateLimit { return n.m.ProbeLimit() }

// AppendState is core.Sharded.AppendState of the local machine. It
// includes the rate-limit buckets, which are local: nodes that answered
// different probes differ there. Snapshot leaves them out.
func (n *Node) AppendState(dst []byte) []byte { return n.m.AppendState(dst) }

// Snapshot is core.Sharded.Snapshot of the local machine: the durable
// state, the same on every node that applied the same revision.
func (n *Node) Snapshot(dst []byte) []byte { return n.m.Snapshot(dst) }
