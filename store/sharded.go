package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// ShardedDurable is a core.Sharded whose durable state lives in a
// directory, in the same format as a Durable's (a store written by one
// opens in the other). It is safe for concurrent use.
//
// Each call that changes durable state hands its journal records to the
// store under its shard's lock, so that one user's records keep the order
// of the changes, then, after the lock is released, waits until an fsync
// covers them before it returns its outputs. Fsyncs are shared (group
// commit): one caller at a time writes and fsyncs everything appended so
// far, and the callers whose records arrive meanwhile wait for the next
// one, which covers all of them. With many goroutines the durable
// throughput is then about one fsync's worth of changes per fsync, not one
// change.
//
// Every call, a probe too, also waits for the records already appended
// when it returns, if their fsync is still running: a reply never reveals
// a change that a crash could still undo.
//
// Compaction, every Options.CompactEvery records or Options.CompactBytes
// bytes, runs on a goroutine of its own, started by the caller that finds
// it due, and blocks no caller: it creates the next generation's journal,
// takes a snapshot (core.Sharded.SnapshotCut, which locks each shard only
// briefly) whose cut switches the journal over, and installs the snapshot
// when it is written. Meanwhile callers keep appending and fsyncing: the
// frames from before the cut go to the old journal, the later ones to the
// new one. A crash before the snapshot is installed leaves the old
// snapshot with both journals, which Open replays in turn.
type ShardedDurable struct {
	dirStore // the files; only the holder of busy touches them after Open
	s        *core.Sharded

	mu      sync.Mutex
	cond    sync.Cond // on mu: signalled when busy clears or err is set
	pending []byte    // frames appended and not yet written
	spare   []byte    // the buffer of the last write, reused
	recs    int       // records in the current journal, written or pending
	bytes   int       // bytes in the current journal, written or pending
	busy    bool      // a caller is writing the journal
	err     error

	// A compaction under way, and what its cut left to write: the journal
	// before the cut and its frames not yet written. The next writer
	// writes and closes it, unless the snapshot is installed first.
	compacting bool
	old        *os.File
	oldPending []byte
	snap       []byte // the last compaction's snapshot buffer, reused

	appended atomic.Uint64 // calls whose records were appended, since Open
	synced   atomic.Uint64 // of those, how many are on disk
	failed   atomic.Bool   // err is set
	fsyncs   atomic.Uint64 // journal fsyncs and compactions since Open

	beforeInstall func() // for tests: a compaction calls it before installing its snapshot
}

// errManualSync refuses Options.ManualSync for a ShardedDurable.
var errManualSync = errors.New("store: Options.ManualSync is for Open: a ShardedDurable groups its fsyncs by itself")

// OpenSharded opens (creating it if needed) the store in dir and returns a
// ShardedDurable running core.NewSharded(cfg, shards), holding the state
// the store kept. Options.ManualSync is refused: concurrent callers share
// fsyncs without it.
func OpenSharded(dir string, cfg core.Config, shards int, opts Options) (*ShardedDurable, error) {
	if opts.ManualSync {
		return nil, errManualSync
	}
	s, err := core.NewSharded(cfg, shards)
	if err != nil {
		return nil, err
	}
	ds, err := openDir(dir, opts)
	if err != nil {
		return nil, err
	}
	d := &ShardedDurable{dirStore: ds, s: s}
	d.cond.L = &d.mu
	compact := func() error { return d.install(s.Snapshot(appendSnapshotHeader(nil, d.gen+1))) }
	if err := d.load(s, compact); err != nil {
		unlockDir(d.lock)
		return nil, err
	}
	s.SetJournal(d.append)
	return d, nil
}

// append is the Sharded's journal function: it runs under the lock of the
// shard that made recs.
func (d *ShardedDurable) append(recs [][]byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	n := len(d.pending)
	d.pending = appendFrames(d.pending, recs)
	d.recs += len(recs)
	d.bytes += len(d.pending) - n
	d.appended.Add(1)
	return nil
}

// settle waits until every record appended so far is on disk, writing
// itself when no other caller is, and starting a compaction when one is
// due.
func (d *ShardedDurable) settle() error {
	target := d.appended.Load()
	if d.synced.Load() >= target && !d.failed.Load() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.err == nil && d.synced.Load() < target {
		if !d.compacting && (d.recs >= d.opts.CompactEvery || d.bytes >= d.opts.CompactBytes) {
			d.startCompactLocked()
		}
		if d.busy {
			d.cond.Wait()
		} else {
			d.flushLocked()
		}
	}
	return d.err
}

// flushLocked writes and fsyncs the pending frames, those of a journal a
// compaction's cut closed first; d.mu is held and released meanwhile, so
// that other callers keep appending.
func (d *ShardedDurable) flushLocked() {
	d.busy = true
	old, oldBuf := d.old, d.oldPending
	d.old, d.oldPending = nil, nil
	buf, f, upto := d.pending, d.journal, d.appended.Load()
	d.pending = d.spare[:0]
	d.mu.Unlock()
	var err error
	if old != nil {
		if len(oldBuf) > 0 {
			if _, err = old.Write(oldBuf); err == nil {
				err = old.Sync()
			}
		}
		if cerr := old.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		if _, err = f.Write(buf); err == nil {
			err = f.Sync()
		}
	}
	d.mu.Lock()
	d.spare = buf[:0]
	d.busy = false
	d.done(upto, err)
}

// startCompactLocked starts a compaction on its own goroutine; d.mu is
// held.
func (d *ShardedDurable) startCompactLocked() {
	d.compacting = true
	go d.compact(d.gen+1, d.snap)
}

// compact writes a snapshot as generation gen, starting gen's journal at
// its cut, and installs it. Only the compaction touches d.gen, the
// snapshot file and (until the cut) the creation of the next journal.
func (d *ShardedDurable) compact(gen uint64, buf []byte) {
	j, err := createJournal(d.dir, gen)
	if err != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.endCompactLocked(gen, 0, nil, err)
		return
	}
	var upto uint64
	b := d.s.SnapshotCut(appendSnapshotHeader(buf[:0], gen), func() {
		// No call is running: the snapshot holds every frame appended
		// so far, and the next ones go to the next journal.
		d.mu.Lock()
		upto = d.appended.Load()
		d.old, d.oldPending = d.journal, d.pending
		d.journal, d.pending = j, nil
		d.recs, d.bytes = 0, 0
		d.mu.Unlock()
	})
	d.mu.Lock()
	hook := d.beforeInstall
	d.mu.Unlock()
	if hook != nil {
		hook()
	}
	err = writeSnapshot(d.dir, b)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.endCompactLocked(gen, upto, b, err)
}

// endCompactLocked ends a compaction of generation gen whose cut came
// after upto appends; d.mu is held.
func (d *ShardedDurable) endCompactLocked(gen, upto uint64, snap []byte, err error) {
	if err == nil {
		// The snapshot covers the old journal: drop its unwritten frames
		// and the file, once no writer is using it.
		for d.busy {
			d.cond.Wait()
		}
		if d.old != nil {
			d.old.Close()
			d.old, d.oldPending = nil, nil
		}
		os.Remove(filepath.Join(d.dir, journalName(gen-1)))
		d.gen = gen
		d.snap = snap[:0]
	}
	d.compacting = false
	d.done(upto, err)
}

// done ends a write or a compaction that covered the first upto appends.
func (d *ShardedDurable) done(upto uint64, err error) {
	if err != nil {
		// The frames are in memory only, and their callers' state has
		// changed: refuse everything from now on.
		d.err = fmt.Errorf("%w (%v)", ErrFailed, err)
		d.failed.Store(true)
	} else if upto > d.synced.Load() {
		d.synced.Store(upto)
	}
	d.fsyncs.Add(1)
	d.cond.Broadcast()
}

func (d *ShardedDurable) check() error {
	if d.failed.Load() {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.err
	}
	return nil
}

// after finishes a call: its outputs go back only once what it (and every
// call before it) appended is on disk.
func (d *ShardedDurable) after(out []core.Output, err error) ([]core.Output, error) {
	if err != nil {
		return nil, err
	}
	if err := d.settle(); err != nil {
		return nil, err
	}
	return out, nil
}

// afterInto is after for the Into calls.
func (d *ShardedDurable) afterInto(o *core.Outputs, err error) error {
	if err == nil {
		err = d.settle()
	}
	if err != nil {
		o.List = o.List[:0]
	}
	return err
}

// Sharded returns the machine, for reading (AppendState, Snapshot) and for
// the facts the store does not keep. Calling its input methods directly
// bypasses the wait for the fsync, not the journal.
func (d *ShardedDurable) Sharded() *core.Sharded { return d.s }

// Client is core.Sharded.Client, persisted.
func (d *ShardedDurable) Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.after(d.s.Client(now, session, raw))
}

// ClientInto is core.Sharded.ClientInto, persisted.
func (d *ShardedDurable) ClientInto(o *core.Outputs, now clock.Time, session stanza.JID, raw []byte) error {
	if err := d.check(); err != nil {
		o.List = o.List[:0]
		return err
	}
	return d.afterInto(o, d.s.ClientInto(o, now, session, raw))
}

// Server is core.Sharded.Server, persisted.
func (d *ShardedDurable) Server(now clock.Time, raw []byte) ([]core.Output, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.after(d.s.Server(now, raw))
}

// ServerInto is core.Sharded.ServerInto, persisted.
func (d *ShardedDurable) ServerInto(o *core.Outputs, now clock.Time, raw []byte) error {
	if err := d.check(); err != nil {
		o.List = o.List[:0]
		return err
	}
	return d.afterInto(o, d.s.ServerInto(o, now, raw))
}

// Close is core.Sharded.Close (a session ended), persisted. To close the
// store, see Shutdown.
func (d *ShardedDurable) Close(now clock.Time, session stanza.JID) ([]core.Output, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.after(d.s.Close(now, session))
}

// Up is core.Sharded.Up, persisted.
func (d *ShardedDurable) Up(now clock.Time, jid stanza.JID) ([]core.Output, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.after(d.s.Up(now, jid))
}

// Down is core.Sharded.Down, persisted.
func (d *ShardedDurable) Down(now clock.Time, jid stanza.JID) ([]core.Output, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.after(d.s.Down(now, jid))
}

// SetRoster is core.Sharded.SetRoster (not stored).
func (d *ShardedDurable) SetRoster(owner, contact stanza.JID, sub core.Subscription) error {
	return d.s.SetRoster(owner, contact, sub)
}

// SetBlock is core.Sharded.SetBlock (not stored).
func (d *ShardedDurable) SetBlock(owner, jid stanza.JID, blocked bool) error {
	return d.s.SetBlock(owner, jid, blocked)
}

// SetHidden is core.Sharded.SetHidden (not stored).
func (d *ShardedDurable) SetHidden(owner stanza.JID, hidden bool) error {
	return d.s.SetHidden(owner, hidden)
}

// SetProbeLimit is core.Sharded.SetProbeLimit (not stored).
func (d *ShardedDurable) SetProbeLimit(now clock.Time, l core.RateLimit) error {
	return d.s.SetProbeLimit(now, l)
}

// AppendState is core.Sharded.AppendState.
func (d *ShardedDurable) AppendState(dst []byte) []byte { return d.s.AppendState(dst) }

// Fsyncs is how many journal fsyncs and compactions the store has done
// since Open: with the number of acknowledged changes, it tells how well
// the group commit batches.
func (d *ShardedDurable) Fsyncs() uint64 { return d.fsyncs.Load() }

// Compact writes a snapshot of the whole state and starts a new, empty
// journal, and returns when the snapshot is installed. The store does it
// by itself, in the background, every Options.CompactEvery records.
func (d *ShardedDurable) Compact() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.compacting && d.err == nil {
		d.cond.Wait()
	}
	if d.err != nil {
		return d.err
	}
	d.startCompactLocked()
	for d.compacting && d.err == nil {
		d.cond.Wait()
	}
	return d.err
}

// Shutdown waits for the pending records to be on disk and closes the
// store's files. Calls still running may fail with ErrFailed; the
// ShardedDurable is unusable afterwards.
func (d *ShardedDurable) Shutdown() error {
	err := d.settle()
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.busy || d.compacting {
		d.cond.Wait()
	}
	if d.old != nil {
		d.old.Close() // a failed compaction's: its frames are not acknowledged
	}
	if d.journal != nil {
		if cerr := d.journal.Close(); err == nil {
			err = cerr
		}
	}
	unlockDir(d.lock)
	if d.err == nil {
		d.err = errors.New("store: shut down")
		d.failed.Store(true)
	}
	d.cond.Broadcast()
	return err
}
