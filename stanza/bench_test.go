package stanza_test

// Benchmarks of JID normalisation and stanza parsing (issue 4). CI runs
// them once: go test -run '^$' -bench . -benchtime=1x ./...

import (
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

var benchJIDs = []struct{ name, in, want string }{
	// Already normalised, the common case for JIDs other servers sent.
	{"ascii-normalised", "juliet@capulet.com/balcony", "juliet@capulet.com/balcony"},
	// Mixed case: the ASCII fast path lower-cases local and domain parts.
	{"ascii-mixed-case", "Juliet@Capulet.COM/Balcony", "juliet@capulet.com/Balcony"},
	// Non-ASCII in every part: PRECIS UsernameCaseMapped, IDNA, OpaqueString.
	{"non-ascii", "Jürgen@Bücher.example/Küche", "jürgen@bücher.example/Küche"},
}

// BenchmarkParseJID normalises a JID from bytes, as the machine does for
// every from and to attribute.
func BenchmarkParseJID(b *testing.B) {
	for _, c := range benchJIDs {
		b.Run(c.name, func(b *testing.B) {
			in := []byte(c.in)
			j, err := stanza.ParseBytes(in)
			if err != nil || j.String() != c.want {
				b.Fatalf("ParseBytes(%q) = %q, %v; want %q", c.in, j, err, c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := stanza.ParseBytes(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendNorm normalises into a caller's buffer.
func BenchmarkAppendNorm(b *testing.B) {
	for _, c := range benchJIDs {
		b.Run(c.name, func(b *testing.B) {
			in := []byte(c.in)
			buf := make([]byte, 0, 256)
			out, _, err := stanza.AppendNorm(buf, in)
			if err != nil || string(out) != c.want {
				b.Fatalf("AppendNorm(%q) = %q, %v; want %q", c.in, out, err, c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := stanza.AppendNorm(buf[:0], in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParsePresence runs the strict parser and the presence view over
// a probe and a typical broadcast.
func BenchmarkParsePresence(b *testing.B) {
	cases := []struct{ name, in string }{
		{"probe", `<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='probe-1'/>`},
		{"broadcast", `<presence id='av1'><show>away</show><status>On the balcony</status><priority>5</priority>` +
			`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			in := []byte(c.in)
			var p stanza.Parser
			var pr stanza.Presence
			if err := p.ParsePresence(in, &pr); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if err := p.ParsePresence(in, &pr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendDelay writes a delay element with a stamp.
func BenchmarkAppendDelay(b *testing.B) {
	buf := make([]byte, 0, 256)
	at := clock.Epoch2000 + 1234567890
	b.ReportAllocs()
	for b.Loop() {
		buf = stanza.AppendDelay(buf[:0], "romeo@montague.com/balcony", at)
	}
}
