package core_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// FuzzRestore feeds hostile durable state to Restore and ApplyRecord: a
// snapshot file or journal an attacker (or a failing disk) wrote. The input
// is a snapshot without its checksum, which the target appends so that the
// mutations reach the decoder, and is also tried as one journal record.
// Refused state must match ErrCorrupt and change nothing; accepted state
// must snapshot and restore to itself, and the machine must go on working
// (events, probes, the restart rule) without panicking.
func FuzzRestore(f *testing.F) {
	for seed := uint64(1); seed <= 6; seed++ {
		m := newMachine(f, true)
		for _, e := range randomEvents(seed, 60) {
			if _, err := apply(m, e); err == nil {
				for _, r := range m.Records() {
					f.Add(bytes.Clone(r))
				}
			}
		}
		s := m.Snapshot(nil)
		f.Add(s[:len(s)-4])
	}
	// Regression: a snapshot listing a resource twice was loaded, and the
	// resource stayed online after going offline.
	m := newMachine(f, false)
	m.Client(t0, stanza.MustParse("romeo@montague.com/aaaaaaa"), []byte(`<presence/>`))
	m.Client(t0, stanza.MustParse("romeo@montague.com/bbbbbbb"), []byte(`<presence/>`))
	m.Up(t0, stanza.MustParse("chat1.montague.com"))
	m.Up(t0, stanza.MustParse("chat2.montague.com"))
	s := m.Snapshot(nil)
	f.Add(bytes.Replace(s[:len(s)-4], []byte("bbbbbbb"), []byte("aaaaaaa"), 1))
	f.Add(bytes.Replace(s[:len(s)-4], []byte("chat2"), []byte("chat1"), 1))
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	f.Fuzz(func(t *testing.T, body []byte) {
		snap := binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
		for _, try := range []func(*core.Machine) error{
			func(m *core.Machine) error { return m.Restore(snap) },
			func(m *core.Machine) error { return m.ApplyRecord(body) },
		} {
			m := newMachine(t, false)
			for _, e := range randomEvents(1, 20) {
				apply(m, e)
			}
			before := m.AppendState(nil)
			if err := try(m); err != nil {
				if !errors.Is(err, core.ErrCorrupt) {
					t.Fatalf("error %v does not match ErrCorrupt", err)
				}
				if !bytes.Equal(before, m.AppendState(nil)) {
					t.Fatal("refused durable state changed the machine")
				}
				continue
			}
			// No resource may be listed twice: a probe to each user names
			// each online resource once.
			for _, u := range []string{"romeo", "juliet", "nurse", "tybalt"} {
				out, err := m.Server(0, []byte(`<presence from='`+u+`@montague.com/x' to='`+u+`@montague.com' type='probe'/>`))
				if err != nil {
					t.Fatal(err)
				}
				seen := map[string]bool{}
				for _, o := range out {
					from := string(o.Stanza[:bytes.Index(o.Stanza, []byte(" to="))])
					if seen[from] {
						t.Fatalf("restored state lists a resource twice: %s", out)
					}
					seen[from] = true
				}
			}
			s1 := m.Snapshot(nil)
			r := newMachine(t, false)
			if err := r.Restore(s1); err != nil {
				t.Fatalf("the machine's own snapshot does not restore: %v", err)
			}
			if !bytes.Equal(s1, r.Snapshot(nil)) {
				t.Fatal("snapshot does not restore to itself")
			}
			for _, e := range randomEvents(2, 40) {
				apply(r, e)
			}
			r.Restarted()
			if err := newMachine(t, false).Restore(r.Snapshot(nil)); err != nil {
				t.Fatalf("after events and a restart the snapshot does not restore: %v", err)
			}
		}
	})
}
