package core

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Durable state: a host that wants presence history to survive a restart
// writes a snapshot now and then (Snapshot), persists the journal records
// each call produces (Records, with Config.Journal set), and on start-up
// loads the snapshot (Restore), applies the records written since
// (ApplyRecord) and finally calls Restarted. Package store does all of this
// with a file.

const (
	snapshotMagic   = "LSSN"
	snapshotVersion = 1
)

// ErrCorrupt means a snapshot or journal record failed its checks (magic,
// version, checksum, structure). Nothing of it was loaded.
var ErrCorrupt = errors.New("corrupt or unsupported durable state")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Journal record operations.
const (
	opAvailable   = 1 // bare, resource, record: resource is (still) available
	opUnavailable = 2 // bare, resource, record: resource went away; record is the last unavailable
	opHost        = 3 // domain, up, since
)

// Snapshot appends the machine's durable state to dst: every user's
// available resources and last unavailable presence, hosted domains, and
// the time of the last change. Rate-limit buckets are not durable: they
// belong to sessions, which do not survive a restart. The encoding is
// versioned and ends with a CRC-32C.
func (m *Machine) Snapshot(dst []byte) []byte {
	return appendSnapshot(dst, m.lastChange, m.users, m.hosted)
}

// appendSnapshot encodes one machine's durable state; Sharded passes the
// union of its shards so that its snapshot equals a single Machine's.
func appendSnapshot(dst []byte, last clock.Time, users map[string]*user, hosted map[string]*host) []byte {
	start := len(dst)
	dst = appendSnapshotHead(dst, last)
	dst = appendTracked(dst, users, hosted)
	return sealSnapshot(dst, start)
}

func appendSnapshotHead(dst []byte, last clock.Time) []byte {
	dst = append(dst, snapshotMagic...)
	dst = binary.AppendUvarint(dst, snapshotVersion)
	return appendTime(dst, last)
}

// sealSnapshot appends the checksum of the snapshot that starts at
// dst[start].
func sealSnapshot(dst []byte, start int) []byte {
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func appendHost(dst []byte, k string, h *host) []byte {
	dst = appendString(dst, k)
	up := byte(0)
	if h.up {
		up = 1
	}
	dst = append(dst, up)
	return appendTime(dst, h.since)
}

// Restore replaces the machine's durable state with a snapshot. The
// snapshot is checked whole (magic, version, checksum, every JID and
// record) before anything changes: on error the machine is as it was.
// Probe buckets are emptied.
func (m *Machine) Restore(snapshot []byte) error {
	users, hosted, last, err := decodeSnapshot(snapshot)
	if err != nil {
		return err
	}
	m.users, m.hosted, m.lastChange = users, hosted, last
	m.buckets = make(map[string]*bucket)
	return nil
}

// decodeSnapshot checks a snapshot whole and decodes it.
func decodeSnapshot(snapshot []byte) (users map[string]*user, hosted map[string]*host, last clock.Time, err error) {
	parts, hosted, last, err := decodeSnapshotParts(snapshot, 1, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	return parts[0], hosted, last, nil
}

// decodeSnapshotParts decodes a snapshot with its users split into n maps
// by partOf (nil when n is 1), each presized, so that a Sharded restores
// without growing maps or moving users between them. The users share one
// allocation, and the records' bytes a few: a million users cost a few
// dozen allocations besides their keys.
func decodeSnapshotParts(snapshot []byte, n int, partOf func(string) int) (users []map[string]*user, hosted map[string]*host, last clock.Time, err error) {
	if len(snapshot) < len(snapshotMagic)+4 {
		return nil, nil, 0, corrupt("snapshot is truncated")
	}
	body, sum := snapshot[:len(snapshot)-4], binary.BigEndian.Uint32(snapshot[len(snapshot)-4:])
	if string(body[:len(snapshotMagic)]) != snapshotMagic {
		return nil, nil, 0, corrupt("not a lastseen snapshot")
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, nil, 0, corrupt("snapshot checksum mismatch (truncated or damaged)")
	}
	d := decoder{b: body[len(snapshotMagic):], arena: true}
	if v := d.uvarint(); v != snapshotVersion {
		if d.err != nil {
			return nil, nil, 0, d.err
		}
		return nil, nil, 0, corrupt("snapshot version is not 1")
	}
	last = d.time()
	count := d.count()
	if count > len(d.b)/4 { // a user takes at least 4 bytes
		d.fail("user count larger than the data")
	}
	users = make([]map[string]*user, n)
	for i := range users {
		// Keys spread evenly over the parts, with some headroom.
		users[i] = make(map[string]*user, count/n+count/n/16+8)
	}
	slab := make([]user, count)
	prev := ""
	for i := 0; i < count && d.err == nil; i++ {
		k := d.jid(true)
		// Snapshots list users in strictly increasing key order, so
		// comparing each key with the one before finds a duplicate as a
		// map probe would, without the probe's cache miss per user.
		if i > 0 && k <= prev {
			d.fail("users not in strictly increasing key order (listed twice?)")
		}
		prev = k
		u := &slab[i]
		part := users[0]
		if partOf != nil {
			part = users[partOf(k)]
		}
		for r := d.count(); r > 0 && d.err == nil; r-- {
			res := d.resource()
			if res.name == "" {
				d.fail("available resource without a name")
			} else if u.find(res.name) >= 0 {
				d.fail("available resource listed twice")
			}
			u.avail = append(u.avail, res)
		}
		u.last = d.resource()
		part[k] = u
	}
	hosted = make(map[string]*host)
	for n := d.count(); n > 0 && d.err == nil; n-- {
		k := d.jid(false)
		h := &host{up: d.byte() == 1, since: d.time()}
		if _, dup := hosted[k]; dup {
			d.fail("hosted domain listed twice")
		}
		hosted[k] = h
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, nil, 0, d.err
	}
	return users, hosted, last, nil
}

// Restarted applies the restart rule after a Restore and the journal
// replay: every resource still available (its session died with the
// process) becomes unavailable with no children, stamped with the time of
// the last change the machine knows of, so no contact sees a ghost online
// after a crash. It returns how many resources it took offline.
func (m *Machine) Restarted() int {
	n := 0
	for _, u := range m.users {
		if len(u.avail) == 0 {
			continue
		}
		// The last unavailable presence becomes the resource that changed
		// last; ties go to the one that came online last.
		latest := 0
		for i := range u.avail {
			if u.avail[i].rec.at >= u.avail[latest].rec.at {
				latest = i
			}
		}
		u.last = resource{name: u.avail[latest].name, rec: record{at: m.lastChange}}
		n += len(u.avail)
		u.avail = nil
	}
	m.buckets = make(map[string]*bucket)
	return n
}

// Records returns the journal records of the last call, one per durable
// change, when Config.Journal is set. Persist them in order before sending
// the call's outputs; replaying them with ApplyRecord on the state they
// were made from gives the same state. They alias the machine's buffer
// until its next call.
func (m *Machine) Records() [][]byte {
	if len(m.recOffs) == 0 {
		return nil
	}
	m.records = m.records[:0]
	start := 0
	for _, end := range m.recOffs {
		m.records = append(m.records, m.recBuf[start:end:end])
		start = end
	}
	return m.records
}

// journalResource records that a resource became (still is) available, or
// went away leaving r as the user's last unavailable presence.
func (m *Machine) journalResource(op byte, bare string, r *resource) {
	m.lastChange = maxTime(m.lastChange, r.rec.at)
	if !m.journal {
		return
	}
	m.recBuf = append(m.recBuf, op)
	m.recBuf = appendString(m.recBuf, bare)
	m.recBuf = appendResource(m.recBuf, r)
	m.recOffs = append(m.recOffs, len(m.recBuf))
}

func (m *Machine) journalHost(domain string, h *host) {
	m.lastChange = maxTime(m.lastChange, h.since)
	if !m.journal {
		return
	}
	m.recBuf = append(m.recBuf, opHost)
	m.recBuf = appendHost(m.recBuf, domain, h)
	m.recOffs = append(m.recOffs, len(m.recBuf))
}

func maxTime(a, b clock.Time) clock.Time {
	if b > a {
		return b
	}
	return a
}

// ApplyRecord applies one journal record. It checks the record whole before
// changing anything; a damaged record is refused with ErrCorrupt and the
// machine is as it was.
func (m *Machine) ApplyRecord(rec []byte) error {
	if len(rec) == 0 {
		return corrupt("empty journal record")
	}
	d := decoder{b: rec[1:]}
	switch rec[0] {
	case opAvailable, opUnavailable:
		bare := d.jid(true)
		r := d.resource()
		if d.err == nil && len(d.b) != 0 {
			d.fail("trailing bytes")
		}
		if d.err == nil && r.name == "" {
			d.fail("record without a resource")
		}
		if d.err != nil {
			return d.err
		}
		u := m.users[bare]
		if u == nil {
			u = &user{}
			m.users[bare] = u
		}
		i := u.find(r.name)
		if rec[0] == opAvailable {
			if i < 0 {
				u.avail = append(u.avail, r)
			} else {
				u.avail[i] = r
			}
		} else {
			if i >= 0 {
				u.avail = append(u.avail[:i], u.avail[i+1:]...)
			}
			u.last = r
		}
		m.lastChange = maxTime(m.lastChange, r.rec.at)
	case opHost:
		k := d.jid(false)
		h := &host{up: d.byte() == 1, since: d.time()}
		if d.err == nil && len(d.b) != 0 {
			d.fail("trailing bytes")
		}
		if d.err != nil {
			return d.err
		}
		m.hosted[k] = h
		m.lastChange = maxTime(m.lastChange, h.since)
	default:
		return corrupt("unknown journal record type")
	}
	return nil
}

func corrupt(msg string) error { return withDetail(ErrCorrupt, msg) }

// decoder reads the durable encodings; the first problem sticks in err.
type decoder struct {
	b   []byte
	err error
	// arena, when set, makes records share chunks of memory (a snapshot
	// has many), and resource names that repeat share one string and one
	// check (most users have the same few).
	arena     bool
	chunk     []byte
	keys      strings.Builder // with arena, the users' keys, a chunk at a time
	lastName  string
	nameValid bool
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = corrupt(msg)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must be plausible for what is left.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail("count larger than the data")
		return 0
	}
	return int(v)
}

func (d *decoder) time() clock.Time {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated time")
		return 0
	}
	d.b = d.b[n:]
	return clock.Time(v)
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

// key is string, but with arena the strings share chunks of memory: a
// snapshot's million keys cost a few hundred allocations, not a million.
// A chunk never grows past its first capacity, so the strings already cut
// from it stay as they are.
func (d *decoder) key() string {
	b := d.bytes()
	if !d.arena || len(b) > decoderChunk/4 {
		return string(b)
	}
	if len(b) > d.keys.Cap()-d.keys.Len() {
		d.keys = strings.Builder{}
		d.keys.Grow(decoderChunk)
	}
	start := d.keys.Len()
	d.keys.Write(b)
	return d.keys.String()[start:]
}

// decoderChunk is the size of the chunks records share with
// decoder.arena: big enough to make allocations rare, small enough that a
// chunk kept alive by one record wastes little.
const decoderChunk = 64 << 10

// clone copies b to memory of its own (with arena, a chunk shared with
// other records, capped so that appending to it never reaches them).
func (d *decoder) clone(b []byte) []byte {
	if !d.arena || len(b) > decoderChunk/4 {
		return append([]byte(nil), b...)
	}
	if len(b) > cap(d.chunk)-len(d.chunk) {
		d.chunk = make([]byte, 0, decoderChunk)
	}
	start := len(d.chunk)
	d.chunk = append(d.chunk, b...)
	return d.chunk[start:len(d.chunk):len(d.chunk)]
}

// jid reads a JID key and checks it is normalised: a user's bare JID
// (user) or a domain (not user).
func (d *decoder) jid(user bool) string {
	s := d.key()
	if d.err != nil {
		return ""
	}
	j, err := stanza.Parse(s)
	if err != nil || j.String() != s || !j.IsBare() || j.HasLocal() != user {
		d.fail("bad JID " + s)
		return ""
	}
	// s is already a copy of the snapshot's bytes (d.string): cloning it
	// again cost an allocation per user.
	return s
}

func (d *decoder) resource() resource {
	var r resource
	name := d.bytes()
	if d.err != nil || len(name) == 0 {
		return r
	}
	if d.arena && d.nameValid && string(name) == d.lastName {
		r.name = d.lastName
	} else {
		r.name = string(name)
		if j, err := stanza.Parse("x@y/" + r.name); err != nil || j.Resource() != r.name {
			d.fail("bad resource " + r.name)
			return r
		}
		d.lastName, d.nameValid = r.name, true
	}
	r.rec.at = d.time()
	idLen, attrLen := d.uvarint(), d.uvarint()
	r.rec.blob = d.clone(d.bytes())
	if d.err == nil && idLen+attrLen > uint64(len(r.rec.blob)) {
		d.fail("record lengths exceed its data")
	}
	r.rec.idLen, r.rec.attrLen = int32(idLen), int32(attrLen)
	return r
}
