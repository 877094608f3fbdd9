package core

import (
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// jidSeeds are addresses with every kind of part, some holding characters
// that need escaping in their resourcepart, or characters that map to them.
var jidSeeds = []string{
	"romeo@montague.com", "romeo@montague.com/balcony", "montague.com", "montague.com/x",
	"juliet@capulet.com/<&'\">", "juliet@capulet.com/a&b", "juliet@capulet.com/ ＜＂＆＇＞ ",
	"ＲＯＭＥＯ@ＭＯＮＴＡＧＵＥ.ＣＯＭ/ｒｅｓ", "♚.example/♚", "例え@例え.テスト/'", "xn--r8jz45g.xn--zckzah",
	"[::1]", "x@[0:0::1]/<", "1.2.3.4/&amp;", "a@b.c/x/y@z", "a@b.c./d", "用户@例子.广告。/资源",
	"＂@example.com", "a＆b@example.com", "a＜b@example.com", "user@exa＆mple.com", "user@exa'mple.com",
}

// FuzzAppendJIDEscaped checks that escaping only the resourcepart of a
// normalised JID gives what escaping all of it gives: that a normalised
// localpart or domainpart never holds a character to escape.
func FuzzAppendJIDEscaped(f *testing.F) {
	for _, s := range jidSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := stanza.Parse(s)
		if err != nil {
			return
		}
		want := stanza.AppendEscaped(nil, j.String())
		if got := appendJIDEscaped(nil, j); string(got) != string(want) {
			t.Fatalf("appendJIDEscaped(%q) = %q, want %q", j, got, want)
		}
		if !j.IsBare() {
			if got := appendFull(nil, j.Bare().String(), j.Resource()); string(got) != string(want) {
				t.Fatalf("appendFull(%q) = %q, want %q", j, got, want)
			}
		}
		if needsEscape(j.Bare().String()) {
			t.Fatalf("bare JID %q needs escaping", j.Bare())
		}
	})
}

// TestDelayMatchesStanza checks that the delay the machine writes is
// stanza.AppendDelay's, byte for byte.
func TestDelayMatchesStanza(t *testing.T) {
	for _, s := range jidSeeds {
		j, err := stanza.Parse(s)
		if err != nil || j.IsBare() {
			continue
		}
		for _, at := range []clock.Time{0, clock.Epoch2000, clock.Epoch2000 + 1234567890, -1} {
			var m Machine
			m.body(nil, j.Bare().String(), j.Resource(), at, true)
			want := append(append([]byte{'>'}, stanza.AppendDelay(nil, j.String(), at)...), "</presence>"...)
			if string(m.buf) != string(want) {
				t.Errorf("delay from %q at %v: got %s, want %s", j, at, m.buf, want)
			}
		}
	}
}
