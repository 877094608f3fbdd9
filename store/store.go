// Package store keeps a lastseen machine's state in a directory, so that
// presence history survives a restart of the process out of the box.
//
// The package's Example (example_test.go, and pkg.go.dev with its output)
// shows a host's whole cycle: open, feed events, shut down or crash, open
// again and answer a probe from what was kept.
//
// # Format
//
// The directory holds a snapshot and one journal:
//
//   - snapshot: "LSSTORE\x01", the journal generation (8 bytes, big
//     endian), a core.Machine snapshot (itself versioned and checksummed),
//     and a CRC-32C (Castagnoli) of everything before it. It is written to
//     snapshot.tmp, fsynced, renamed over snapshot, and the directory is
//     fsynced, so a crash leaves either the old snapshot or the new one.
//   - journal-GEN (GEN in 16 hex digits): the journal records
//     (core.Machine.Records) written since the snapshot of that generation,
//     each framed as [length uint32][CRC-32C uint32][record], big endian.
//     It is only ever appended to.
//   - LOCK: held with flock while a process has the store open, so that two
//     processes never write the same directory.
//
// Every call on a Durable that changes durable state appends its records to
// the journal in one write and fsyncs it before returning the call's
// outputs: when a host has sent an output (or acknowledged an input), the
// change behind it is on disk. Every Options.CompactEvery records the store
// compacts: it writes a new snapshot of generation GEN+1, starts
// journal-GEN+1 and deletes the old journal.
//
// Open loads the snapshot, applies each intact frame of its journal (and of
// the journals of the generations after it, which a ShardedDurable that
// died during a compaction leaves), stops
// at a torn tail (a frame cut short or, as the last frame, failing its
// checksum: what a crash during the last append leaves), applies the
// restart rule (core.Machine.Restarted: sessions that were online come back
// offline, stamped with the time of the last change) and compacts, so the
// torn tail is dropped and the restart rule is itself on disk. Damage that
// a crash cannot cause (a bad snapshot, a bad frame in the middle of the
// journal, a record the machine refuses) makes Open fail with an error that
// matches core.ErrCorrupt and names the file and offset; nothing is loaded.
//
// # Why an append-only file and not bbolt
//
// The machine already describes its changes as a stream of self-contained
// journal records, and a snapshot as one byte string: an append-only log
// plus an atomically replaced snapshot is the natural store for that, in a
// few hundred lines of the standard library. An embedded B-tree such as
// go.etcd.io/bbolt would add a dependency (and its mmap, page size and
// freelist tuning) to keep what is, to the store, an opaque blob and a
// queue of blobs; its per-transaction fsync costs the same as ours, and its
// copy-on-write pages would write more bytes per change than one framed
// record. Both layouts are easy to read with the machine's own decoder, and
// the checksums make damage visible rather than silently loaded.
//
// # Cost
//
// One write and one fsync per call that changes state (available and
// unavailable broadcasts, close of an online session, up, down); probes and
// ignored stanzas write nothing. An fsync costs from tens of microseconds
// (NVMe with a write cache that honours flushes) to several milliseconds
// (network or rotating disks), which bounds a single event loop to that many
// changes per second. Hosts that process events in batches can set
// Options.ManualSync and call Sync once per batch, before sending the
// batch's outputs: one fsync then covers the whole batch (group commit).
// Compaction writes the whole state, so its cost grows with the number of
// users; CompactEvery and CompactBytes trade journal length (and so
// start-up replay time and memory, since Open reads the journal whole)
// against how often that happens.
//
// # Concurrent servers
//
// OpenSharded gives the same store for a core.Sharded: a ShardedDurable is
// safe for concurrent use, and concurrent callers share fsyncs (group
// commit) instead of ManualSync. It compacts on a goroutine of its own,
// which no call waits for (Shutdown does). Its directory has the same
// format, so a store written by either opens in the other.
//
// # Other engines
//
// OpenEngine keeps any Engine, not only a core.Machine: package wazerohost
// (bindings/go) opens the WebAssembly module's machine with it, whose
// journal records travel over the ABI. The records and the snapshot are
// the same bytes from every engine, so a directory written by one opens on
// the others; the Node.js binding writes the same format too.
//
// What is not stored: roster, blocking and opt-out facts (the host's own
// storage holds them; feed them again after Open), and probe rate-limit
// buckets (they belong to sessions, which do not survive a restart).
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

const (
	snapshotName  = "snapshot"
	tmpName       = "snapshot.tmp"
	lockName      = "LOCK"
	journalPrefix = "journal-"
	fileMagic     = "LSSTORE\x01"
	headerLen     = len(fileMagic) + 8
	frameHeader   = 8
)

// Defaults for Options fields left zero.
const (
	// DefaultCompactEvery is how many journal records the store writes
	// before it compacts.
	DefaultCompactEvery = 10000
	// DefaultCompactBytes is how long the journal may grow before the
	// store compacts, whatever the number of records: Open reads the
	// journal whole.
	DefaultCompactBytes = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of the store besides core.ErrCorrupt.
var (
	// ErrLocked means another process (or another Durable in this one) has
	// the directory open.
	ErrLocked = errors.New("store: directory is in use")
	// ErrFailed means an earlier write or fsync failed: the machine in
	// memory is ahead of the disk, so the Durable refuses every further
	// call. Reopen the store to continue from what is on disk.
	ErrFailed = errors.New("store: an earlier write failed; reopen the store")
)

// Options tune a Durable. The zero value is the safe default.
type Options struct {
	// CompactEvery is how many journal records are written between two
	// compactions; zero means DefaultCompactEvery.
	CompactEvery int
	// CompactBytes is the journal length, in bytes, past which the store
	// compacts even before CompactEvery records; zero means
	// DefaultCompactBytes.
	CompactBytes int
	// ManualSync defers the journal write of each call until Sync: the
	// host batches several calls, then calls Sync once before sending any
	// of their outputs (group commit). Outputs alias the machine's buffers
	// until its next call, so a host that batches copies them.
	ManualSync bool
}

// Recovery reports what Open found on disk.
type Recovery struct {
	Generation  uint64 // generation of the snapshot that was loaded (0: none)
	Records     int    // journal records applied on top of it
	TornBytes   int    // bytes of a torn journal tail that were dropped
	TookOffline int    // resources the restart rule took offline
}

// Durable is a core.Machine whose durable state lives in a directory. Like
// a Machine it is not safe for concurrent use.
type Durable struct {
	dirStore
	e       Engine
	m       *core.Machine // e, when the Durable was made by Open
	pending []byte        // frames not yet written (ManualSync)
	err     error
}

// dirStore is the directory of a store, shared by Durable and
// ShardedDurable: the lock, the snapshot file, the current journal and the
// recovery at Open. It does not know when to write; its owner does.
type dirStore struct {
	dir      string
	opts     Options
	lock     *os.File
	journal  *os.File
	gen      uint64
	records  int // records in the current journal, written or pending
	size     int // bytes in the current journal, written or pending
	recovery Recovery
}

// loader is what loading a store needs of the machine behind it:
// core.Machine, core.Sharded and every Engine have it.
type loader interface {
	Restore(snapshot []byte) error
	ApplyRecord(rec []byte) error
	Restarted() int
}

// Open opens (creating it if needed) the store in dir and returns a
// Durable running a machine made with cfg, holding the state the store
// kept. cfg.Journal is set for you.
func Open(dir string, cfg core.Config, opts Options) (*Durable, error) {
	cfg.Journal = true
	m, err := core.New(cfg)
	if err != nil {
		return nil, err
	}
	ds, err := openDir(dir, opts)
	if err != nil {
		return nil, err
	}
	d := &Durable{dirStore: ds, e: m, m: m}
	if err := d.load(m, d.compact); err != nil {
		unlockDir(d.lock)
		return nil, err
	}
	return d, nil
}

// Engine is a lastseen machine the store can keep: *core.Machine, and the
// WebAssembly engine of package wazerohost (bindings/go), whose
// OpenDurable calls OpenEngine. Its methods are core.Machine's; it must
// journal (core.Config.Journal): Records returns the journal records of
// its last Client, Server, Close, Up or Down call.
type Engine interface {
	Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error)
	Server(now clock.Time, raw []byte) ([]core.Output, error)
	Close(now clock.Time, session stanza.JID) ([]core.Output, error)
	Up(now clock.Time, jid stanza.JID) ([]core.Output, error)
	Down(now clock.Time, jid stanza.JID) ([]core.Output, error)
	SetRoster(owner, contact stanza.JID, sub core.Subscription) error
	SetBlock(owner, jid stanza.JID, blocked bool) error
	SetHidden(owner stanza.JID, hidden bool) error
	SetProbeLimit(now clock.Time, l core.RateLimit) error
	AppendState(dst []byte) []byte
	// Snapshot appends the durable state to dst; an engine that cannot
	// answer returns dst unchanged, which the store takes as a failure.
	Snapshot(dst []byte) []byte
	Restore(snapshot []byte) error
	ApplyRecord(rec []byte) error
	// Restarted applies the restart rule; a negative count means the
	// engine could not, which fails Open.
	Restarted() int
	Records() [][]byte
}

// OpenEngine is Open for a machine the caller made, empty and journaling:
// the store loads its state into e. The file format is Open's, so a
// directory written through one engine opens on any other.
func OpenEngine(dir string, e Engine, opts Options) (*Durable, error) {
	ds, err := openDir(dir, opts)
	if err != nil {
		return nil, err
	}
	d := &Durable{dirStore: ds, e: e}
	if m, ok := e.(*core.Machine); ok {
		d.m = m
	}
	if err := d.load(e, d.compact); err != nil {
		unlockDir(d.lock)
		return nil, err
	}
	return d, nil
}

// openDir fills in opts' defaults, creates dir if needed and locks it.
func openDir(dir string, opts Options) (dirStore, error) {
	if opts.CompactEvery <= 0 {
		opts.CompactEvery = DefaultCompactEvery
	}
	if opts.CompactBytes <= 0 {
		opts.CompactBytes = DefaultCompactBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return dirStore{}, fmt.Errorf("store: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return dirStore{}, err
	}
	return dirStore{dir: dir, opts: opts, lock: lock}, nil
}

// load reads the snapshot and journal into m, applies the restart rule
// and calls compact, which must write m's state as a new generation.
func (d *dirStore) load(m loader, compact func() error) error {
	os.Remove(filepath.Join(d.dir, tmpName))
	journals, err := d.journals()
	if err != nil {
		return err
	}
	snapPath := filepath.Join(d.dir, snapshotName)
	b, err := os.ReadFile(snapPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if len(journals) > 0 {
			return fmt.Errorf("store: %s: %w", d.dir, withMsg(core.ErrCorrupt, "journal files without a snapshot"))
		}
	case err != nil:
		return fmt.Errorf("store: %w", err)
	default:
		gen, err := readSnapshot(m, b)
		if err != nil {
			return fmt.Errorf("store: %s: %w", snapPath, err)
		}
		d.gen = gen
		d.recovery.Generation = gen
		if err := d.replayFrom(m, gen, journals); err != nil {
			return err
		}
	}
	d.recovery.TookOffline = m.Restarted()
	if d.recovery.TookOffline < 0 {
		return fmt.Errorf("store: %s: the machine could not apply the restart rule", d.dir)
	}
	if err := compact(); err != nil {
		return err
	}
	// Journals of other generations are left over from a compaction that
	// a crash interrupted; the snapshot holds their records.
	for _, name := range journals {
		if name != journalName(d.gen) {
			os.Remove(filepath.Join(d.dir, name))
		}
	}
	return nil
}

func (d *dirStore) journals() ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), journalPrefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func journalName(gen uint64) string { return fmt.Sprintf("%s%016x", journalPrefix, gen) }

func withMsg(err error, msg string) error { return fmt.Errorf("%w: %s", err, msg) }

// readSnapshot checks the store's snapshot file and restores m from it,
// all or nothing.
func readSnapshot(m loader, b []byte) (uint64, error) {
	if len(b) < headerLen+4 {
		return 0, withMsg(core.ErrCorrupt, "snapshot file is truncated ("+strconv.Itoa(len(b))+" bytes)")
	}
	if string(b[:len(fileMagic)]) != fileMagic {
		return 0, withMsg(core.ErrCorrupt, "not a lastseen store snapshot, or an unsupported version")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return 0, withMsg(core.ErrCorrupt, "snapshot file checksum mismatch (truncated or damaged)")
	}
	gen := binary.BigEndian.Uint64(b[len(fileMagic):headerLen])
	if err := m.Restore(body[headerLen:]); err != nil {
		return 0, err
	}
	return gen, nil
}

// replayFrom applies the journal of generation gen, then those of the
// generations after it, in turn, as long as they exist: a ShardedDurable
// starts the next generation's journal at a compaction's cut, before its
// snapshot is installed, so a crash in between leaves the old snapshot
// with two journals. Only the last may end torn: a writer fsyncs the
// frames of the older journal before it writes any to the newer one.
func (d *dirStore) replayFrom(m loader, gen uint64, journals []string) error {
	for {
		torn := d.recovery.TornBytes
		if err := d.replay(m, filepath.Join(d.dir, journalName(gen))); err != nil {
			return err
		}
		next := journalName(gen + 1)
		if !slices.Contains(journals, next) {
			return nil
		}
		if d.recovery.TornBytes != torn {
			if fi, err := os.Stat(filepath.Join(d.dir, next)); err != nil || fi.Size() > 0 {
				return fmt.Errorf("store: %s: %w", d.dir, withMsg(core.ErrCorrupt, journalName(gen)+" ends torn but the journal after it holds records"))
			}
		}
		gen++
	}
}

// replay applies the intact frames of the journal at path to m.
func (d *dirStore) replay(m loader, path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a crash between the snapshot's rename and the journal's creation
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	off := 0
	for off < len(b) {
		rest := b[off:]
		torn := func() error {
			d.recovery.TornBytes = len(rest)
			return nil
		}
		if len(rest) < frameHeader {
			return torn()
		}
		n := int(binary.BigEndian.Uint32(rest))
		sum := binary.BigEndian.Uint32(rest[4:])
		if n > len(rest)-frameHeader {
			return torn()
		}
		rec := rest[frameHeader : frameHeader+n]
		last := frameHeader+n == len(rest)
		if n == 0 || crc32.Checksum(rec, castagnoli) != sum {
			// A crash can cut the last append short or leave it (or the
			// file's new tail) unwritten; it cannot damage a frame that
			// an fsync already covered and that more frames follow.
			if last || allZero(rest) {
				return torn()
			}
			return fmt.Errorf("store: %s at byte %d: %w", path, off, withMsg(core.ErrCorrupt, "journal frame fails its checksum and is not the last one"))
		}
		if err := m.ApplyRecord(rec); err != nil {
			return fmt.Errorf("store: %s at byte %d: %w", path, off, err)
		}
		d.recovery.Records++
		off += frameHeader + n
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Recovery reports what Open found on disk.
func (d *dirStore) Recovery() Recovery { return d.recovery }

// Machine returns the machine, for reading (AppendState, Snapshot) and for
// the roster, blocking, opt-out and limit facts the store does not keep.
// Calling its input methods directly would bypass the journal. It is nil
// when OpenEngine was given another Engine; see Engine.
func (d *Durable) Machine() *core.Machine { return d.m }

// Engine returns the machine behind the store, whichever its kind, with
// the same caveat as Machine.
func (d *Durable) Engine() Engine { return d.e }

// Client is core.Machine.Client, persisted.
func (d *Durable) Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error) {
	if d.err != nil {
		return nil, d.err
	}
	out, err := d.e.Client(now, session, raw)
	return d.persist(out, err)
}

// Server is core.Machine.Server, persisted (it changes nothing today, but
// goes through the same path so that it stays correct if it ever does).
func (d *Durable) Server(now clock.Time, raw []byte) ([]core.Output, error) {
	if d.err != nil {
		return nil, d.err
	}
	out, err := d.e.Server(now, raw)
	return d.persist(out, err)
}

// Close is core.Machine.Close (a session ended), persisted. To close the
// store, see Shutdown.
func (d *Durable) Close(now clock.Time, session stanza.JID) ([]core.Output, error) {
	if d.err != nil {
		return nil, d.err
	}
	out, err := d.e.Close(now, session)
	return d.persist(out, err)
}

// Up is core.Machine.Up, persisted.
func (d *Durable) Up(now clock.Time, jid stanza.JID) ([]core.Output, error) {
	if d.err != nil {
		return nil, d.err
	}
	out, err := d.e.Up(now, jid)
	return d.persist(out, err)
}

// Down is core.Machine.Down, persisted.
func (d *Durable) Down(now clock.Time, jid stanza.JID) ([]core.Output, error) {
	if d.err != nil {
		return nil, d.err
	}
	out, err := d.e.Down(now, jid)
	return d.persist(out, err)
}

// SetRoster is core.Machine.SetRoster (not stored).
func (d *Durable) SetRoster(owner, contact stanza.JID, sub core.Subscription) error {
	return d.e.SetRoster(owner, contact, sub)
}

// SetBlock is core.Machine.SetBlock (not stored).
func (d *Durable) SetBlock(owner, jid stanza.JID, blocked bool) error {
	return d.e.SetBlock(owner, jid, blocked)
}

// SetHidden is core.Machine.SetHidden (not stored).
func (d *Durable) SetHidden(owner stanza.JID, hidden bool) error {
	return d.e.SetHidden(owner, hidden)
}

// SetProbeLimit is core.Machine.SetProbeLimit (not stored).
func (d *Durable) SetProbeLimit(now clock.Time, l core.RateLimit) error {
	return d.e.SetProbeLimit(now, l)
}

// AppendState is core.Machine.AppendState.
func (d *Durable) AppendState(dst []byte) []byte { return d.e.AppendState(dst) }

// persist frames the call's journal records and, unless ManualSync, writes
// and fsyncs them before the outputs go back to the host.
func (d *Durable) persist(out []core.Output, err error) ([]core.Output, error) {
	if err != nil {
		return nil, err // refused input changed nothing
	}
	recs := d.e.Records()
	if len(recs) == 0 {
		return out, nil
	}
	n := len(d.pending)
	d.pending = appendFrames(d.pending, recs)
	d.records += len(recs)
	d.size += len(d.pending) - n
	if d.records >= d.opts.CompactEvery || d.size >= d.opts.CompactBytes {
		// The new snapshot covers the pending frames too.
		if err := d.compact(); err != nil {
			return nil, err
		}
		return out, nil
	}
	if !d.opts.ManualSync {
		if err := d.Sync(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Sync writes and fsyncs the journal records of the calls made since the
// last Sync. Without Options.ManualSync every call does it itself.
func (d *Durable) Sync() error {
	if d.err != nil {
		return d.err
	}
	if len(d.pending) == 0 {
		return nil
	}
	if _, err := d.journal.Write(d.pending); err != nil {
		return d.fail(err)
	}
	if err := d.journal.Sync(); err != nil {
		return d.fail(err)
	}
	d.pending = d.pending[:0]
	return nil
}

func (d *Durable) fail(err error) error {
	d.err = fmt.Errorf("%w (%v)", ErrFailed, err)
	return fmt.Errorf("store: %w", err)
}

// Compact writes a snapshot of the whole state and starts a new, empty
// journal. The store does it by itself every Options.CompactEvery records.
func (d *Durable) Compact() error {
	if d.err != nil {
		return d.err
	}
	return d.compact()
}

func (d *Durable) compact() error {
	b := d.e.Snapshot(appendSnapshotHeader(nil, d.gen+1))
	if len(b) <= headerLen {
		return d.fail(errors.New("the machine gave no snapshot"))
	}
	if err := d.install(b); err != nil {
		return d.fail(err)
	}
	d.pending = d.pending[:0]
	return nil
}

// appendFrames appends recs to dst as journal frames.
func appendFrames(dst []byte, recs [][]byte) []byte {
	for _, r := range recs {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(r)))
		dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(r, castagnoli))
		dst = append(dst, r...)
	}
	return dst
}

// snapshotHeader starts a snapshot file of generation gen; the machine's
// snapshot follows it.
// appendSnapshotHeader appends the head of the store's snapshot file of
// generation gen to dst; nil dst gets room for a small machine's snapshot.
func appendSnapshotHeader(dst []byte, gen uint64) []byte {
	if dst == nil {
		dst = make([]byte, 0, 4096)
	}
	dst = append(dst, fileMagic...)
	return binary.BigEndian.AppendUint64(dst, gen)
}

// install makes b (appendSnapshotHeader(…, d.gen+1) and the machine's
// snapshot) the store's snapshot and starts its empty journal, deleting
// the old one.
func (d *dirStore) install(b []byte) error {
	gen := d.gen + 1
	if err := writeSnapshot(d.dir, b); err != nil {
		return err
	}
	// From here the new snapshot is what Open loads; its journal may be
	// missing until created, which Open takes as empty.
	j, err := createJournal(d.dir, gen)
	if err != nil {
		return err
	}
	if d.journal != nil {
		d.journal.Close()
		os.Remove(filepath.Join(d.dir, journalName(d.gen)))
	}
	d.journal, d.gen, d.records, d.size = j, gen, 0, 0
	return nil
}

// writeSnapshot seals b with its checksum and makes it, atomically and
// durably, the snapshot file of the store in dir.
func writeSnapshot(dir string, b []byte) error {
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, tmpName)
	if err := writeFileSync(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, snapshotName)); err != nil {
		return err
	}
	return syncDir(dir)
}

// createJournal creates the empty journal of generation gen, durably.
func createJournal(dir string, gen uint64) (*os.File, error) {
	j, err := os.OpenFile(filepath.Join(dir, journalName(gen)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
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
	return f.Close()
}

// Shutdown syncs what is pending and closes the store's files. The Durable
// is unusable afterwards.
func (d *Durable) Shutdown() error {
	err := d.Sync()
	if d.journal != nil {
		if cerr := d.journal.Close(); err == nil {
			err = cerr
		}
	}
	unlockDir(d.lock)
	if d.err == nil {
		d.err = errors.New("store: shut down")
	}
	return err
}
