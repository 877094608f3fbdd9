package cluster

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
)

// The log is the MVCC history of one etcd key: every batch of inputs is a
// Put of that key, so etcd gives it a revision, unique and totally ordered
// with every other change under the watched prefix (node joins and
// expiries included). A batch is encoded as below and ends with a
// CRC-32C, so that a damaged value is refused rather than applied.

// kind is what a log entry asks the machine to do.
type kind byte

const (
	kindClient kind = 1 // a client presence broadcast (Sharded.Client)
	kindClose  kind = 2 // a session ended (Sharded.Close)
	kindUp     kind = 3 // Sharded.Up
	kindDown   kind = 4 // Sharded.Down
	kindLimit  kind = 5 // Sharded.SetProbeLimit
)

// entry is one state-changing input, stamped with the writer's clock.
type entry struct {
	kind  kind
	stamp clock.Time
	jid   string // the session (client, close) or the domain (up, down)
	raw   []byte // the client stanza
	limit core.RateLimit
}

// batch is the value of one Put of the log key: inputs from one node,
// appended together by one guarded transaction.
type batch struct {
	writer  string // the member key of the node that wrote it
	seq     uint64 // the writer's batch number, to route results back
	entries []entry
}

const batchVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func (b *batch) encode(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, batchVersion)
	dst = appendString(dst, b.writer)
	dst = binary.AppendUvarint(dst, b.seq)
	dst = binary.AppendUvarint(dst, uint64(len(b.entries)))
	for i := range b.entries {
		e := &b.entries[i]
		dst = append(dst, byte(e.kind))
		dst = binary.AppendVarint(dst, int64(e.stamp))
		dst = appendString(dst, e.jid)
		switch e.kind {
		case kindClient:
			dst = binary.AppendUvarint(dst, uint64(len(e.raw)))
			dst = append(dst, e.raw...)
		case kindLimit:
			dst = binary.AppendUvarint(dst, uint64(e.limit.Burst))
			dst = binary.AppendVarint(dst, int64(e.limit.Per))
		}
	}
	return binary.BigEndian.AppendUint32(dst, crc32Sum(dst[start:]))
}

func crc32Sum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// decoder reads the encodings of this package; its first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length past the end")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// checked strips and checks the CRC-32C that ends b.
func checked(b []byte) ([]byte, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	body := b[:len(b)-4]
	if crc32Sum(body) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return body, nil
}

// decodeBatch decodes a batch; its raw stanzas alias b.
func decodeBatch(b []byte) (batch, error) {
	body, err := checked(b)
	if err != nil {
		return batch{}, err
	}
	d := decoder{b: body}
	if v := d.byte(); v != batchVersion && d.err == nil {
		return batch{}, fmt.Errorf("%w: batch version %d", ErrCorrupt, v)
	}
	bt := batch{writer: d.string(), seq: d.uvarint()}
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every entry takes at least a byte
		d.fail("entry count past the end")
	}
	bt.entries = make([]entry, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		e := entry{kind: kind(d.byte()), stamp: clock.Time(d.varint()), jid: d.string()}
		switch e.kind {
		case kindClient:
			e.raw = d.bytes()
		case kindLimit:
			e.limit = core.RateLimit{Burst: int(d.uvarint()), Per: time.Duration(d.varint())}
		case kindClose, kindUp, kindDown:
		default:
			d.fail(fmt.Sprintf("unknown entry kind %d", e.kind))
		}
		bt.entries = append(bt.entries, e)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return batch{}, d.err
	}
	return bt, nil
}
