package stanza

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// jidView is what a test can observe of a JID through its API.
type jidView struct {
	String, Local, Domain, Resource string
	IsBare, HasLocal                bool
}

func viewJID(j JID) jidView {
	return jidView{j.String(), j.Local(), j.Domain(), j.Resource(), j.IsBare(), j.HasLocal()}
}

func TestJIDParseValid(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name, in string
		want     jidView
	}{
		// RFC 7622 §3.5, examples of valid JIDs.
		{"rfc1", "juliet@example.com", jidView{"juliet@example.com", "juliet", "example.com", "", true, true}},
		{"rfc2", "juliet@example.com/foo", jidView{"juliet@example.com/foo", "juliet", "example.com", "foo", false, true}},
		{"rfc3", "juliet@example.com/foo bar", jidView{"juliet@example.com/foo bar", "juliet", "example.com", "foo bar", false, true}},
		{"rfc4", "juliet@example.com/foo@bar", jidView{"juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar", false, true}},
		{"rfc5", `foo\20bar@example.com`, jidView{`foo\20bar@example.com`, `foo\20bar`, "example.com", "", true, true}},
		{"rfc6", "fussball@example.com", jidView{"fussball@example.com", "fussball", "example.com", "", true, true}},
		{"rfc7", "fußball@example.com", jidView{"fußball@example.com", "fußball", "example.com", "", true, true}},
		{"rfc8", "π@example.com", jidView{"π@example.com", "π", "example.com", "", true, true}},
		{"rfc9", "Σ@example.com/foo", jidView{"σ@example.com/foo", "σ", "example.com", "foo", false, true}},
		{"rfc10", "σ@example.com/foo", jidView{"σ@example.com/foo", "σ", "example.com", "foo", false, true}},
		{"rfc11", "ς@example.com/foo", jidView{"ς@example.com/foo", "ς", "example.com", "foo", false, true}},
		{"rfc12", "king@example.com/♚", jidView{"king@example.com/♚", "king", "example.com", "♚", false, true}},
		{"rfc13", "example.com", jidView{"example.com", "", "example.com", "", true, false}},
		{"rfc14", "example.com/foobar", jidView{"example.com/foobar", "", "example.com", "foobar", false, false}},
		{"rfc15", "a.example.com/b@example.net", jidView{"a.example.com/b@example.net", "", "a.example.com", "b@example.net", false, false}},

		// Case: localpart and domainpart fold, resourcepart does not (B2).
		{"case", "Romeo@Montague.COM/Balcony", jidView{"romeo@montague.com/Balcony", "romeo", "montague.com", "Balcony", false, true}},
		{"width", "ＪＵＬＩＥＴ@example.com", jidView{"juliet@example.com", "juliet", "example.com", "", true, true}},
		{"nfc local", "e\u0301@example.com", jidView{"\u00e9@example.com", "\u00e9", "example.com", "", true, true}},
		{"nfc resource", "a@example.com/e\u0301", jidView{"a@example.com/\u00e9", "a", "example.com", "\u00e9", false, true}},
		{"resource nbsp", "a@example.com/x\u00a0y", jidView{"a@example.com/x y", "a", "example.com", "x y", false, true}},
		{"resource slash", "a@example.com/b/c@d", jidView{"a@example.com/b/c@d", "a", "example.com", "b/c@d", false, true}},
		// PRECIS allows leading and trailing spaces in OpaqueString.
		{"resource space", "juliet@example.com/ foo ", jidView{"juliet@example.com/ foo ", "juliet", "example.com", " foo ", false, true}},
		{"resource chess", "a@example.com/\u265a", jidView{"a@example.com/\u265a", "a", "example.com", "\u265a", false, true}},
		{"local punct", "a!#$%*+=?^_`{|}~.-@example.com", jidView{"a!#$%*+=?^_`{|}~.-@example.com", "a!#$%*+=?^_`{|}~.-", "example.com", "", true, true}},

		// IP literals.
		{"ipv6", "juliet@[::1]", jidView{"juliet@[::1]", "juliet", "[::1]", "", true, true}},
		{"ipv6 long", "juliet@[0:0:0:0:0:0:0:1]/r", jidView{"juliet@[::1]/r", "juliet", "[::1]", "r", false, true}},
		{"ipv6 upper", "[2001:DB8::A]", jidView{"[2001:db8::a]", "", "[2001:db8::a]", "", true, false}},
		{"ipv6 v4", "[::FFFF:192.0.2.1]", jidView{"[::ffff:192.0.2.1]", "", "[::ffff:192.0.2.1]", "", true, false}},
		{"ipv4", "juliet@192.0.2.1", jidView{"juliet@192.0.2.1", "juliet", "192.0.2.1", "", true, true}},

		// Internationalised domain names.
		{"idn", "例え.テスト", jidView{"例え.テスト", "", "例え.テスト", "", true, false}},
		{"a-label", "xn--r8jz45g.xn--zckzah", jidView{"例え.テスト", "", "例え.テスト", "", true, false}},
		{"a-label upper", "u@XN--R8JZ45G.xn--zckzah/r", jidView{"u@例え.テスト/r", "u", "例え.テスト", "r", false, true}},
		{"ideographic stop", "例え。テスト", jidView{"例え.テスト", "", "例え.テスト", "", true, false}},
		{"fullwidth stop", "example\uff0ecom\uff61", jidView{"example.com", "", "example.com", "", true, false}},
		{"fullwidth domain", "ＥＸＡＭＰＬＥ.com", jidView{"example.com", "", "example.com", "", true, false}},
		{"idn upper", "ÉCOLE.example", jidView{"école.example", "", "école.example", "", true, false}},

		// Trailing dot.
		{"dot", "example.com.", jidView{"example.com", "", "example.com", "", true, false}},
		{"dot full", "juliet@example.com./r.", jidView{"juliet@example.com/r.", "juliet", "example.com", "r.", false, true}},
		{"single label", "localhost", jidView{"localhost", "", "localhost", "", true, false}},

		// Limits, exactly at the edge.
		{"max local", long("a", 1023) + "@x", jidView{long("a", 1023) + "@x", long("a", 1023), "x", "", true, true}},
		{"max resource", "x/" + long("r", 1023), jidView{"x/" + long("r", 1023), "", "x", long("r", 1023), false, false}},
		{"max label", long("a", 63) + ".com", jidView{long("a", 63) + ".com", "", long("a", 63) + ".com", "", true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, viewJID(j)); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
			}
			jb, err := ParseBytes([]byte(tt.in))
			if err != nil || jb != j {
				t.Errorf("ParseBytes(%q) = %v, %v; want %v", tt.in, jb, err, j)
			}
			out, p, err := AppendNorm([]byte("prefix"), []byte(tt.in))
			if err != nil || string(out) != "prefix"+tt.want.String {
				t.Errorf("AppendNorm(%q) = %q, %v", tt.in, out, err)
			}
			wantParts := Parts{len(tt.want.Local), len(tt.want.Domain), len(tt.want.Resource)}
			if diff := cmp.Diff(wantParts, p); diff != "" {
				t.Errorf("AppendNorm(%q) parts (-want +got):\n%s", tt.in, diff)
			}
			if got := string(out[6 : 6+p.Bare()]); got != j.Bare().String() {
				t.Errorf("Parts.Bare: %q, want %q", got, j.Bare().String())
			}
		})
	}
}

func TestJIDParseInvalid(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name, in, part string
	}{
		// RFC 7622 §3.5, examples of invalid JIDs.
		{"rfc1 quotes", `"juliet"@example.com`, "localpart"},
		{"rfc2 space", "foo bar@example.com", "localpart"},
		{"rfc3 empty", "@example.com/", "localpart"},
		{"rfc4 compat", "henry\u2163@example.com", "localpart"},
		// The brief listed this one as valid, but §3.5 lists it as invalid:
		// a symbol is not in the PRECIS IdentifierClass.
		{"rfc5 symbol", "\u265a@example.com", "localpart"},
		{"rfc6 no domain", "juliet@", "domainpart"},
		{"rfc7 no domain", "/foobar", "domainpart"},

		{"empty", "", "jid"},
		{"too long", long("a", jidMaxInput+1), "jid"},
		{"empty resource", "juliet@example.com/", "resourcepart"},
		{"at only", "@", "localpart"},
		{"slash only", "/", "domainpart"},
		{"double at", "user@@host", "domainpart"},
		{"two ats", "a@b@example.com", "domainpart"},
		{"empty domain with resource", "lp@/rp", "domainpart"},
		{"amp", "b&d@example.net", "localpart"},
		{"apos", "b'd@example.net", "localpart"},
		{"colon", "b:d@example.net", "localpart"},
		{"lt", "b<d@example.net", "localpart"},
		{"gt", "b>d@example.net", "localpart"},
		{"fullwidth quote", "b\uff02d@example.net", "localpart"},
		{"control local", "a\x7f@example.net", "localpart"},
		{"nul local", "a\x00@example.net", "localpart"},
		{"bad utf8 local", "\xff@example.net", "localpart"},
		{"long local", long("a", 1024) + "@example.net", "localpart"},
		{"infinity", "\u221e@example.net", "localpart"},
		{"control resource", "a@example.net/\x00", "resourcepart"},
		{"tab resource", "a@example.net/a\tb", "resourcepart"},
		{"bad utf8 resource", "a@example.net/\xff", "resourcepart"},
		{"long resource", "a@example.net/" + long("r", 1024), "resourcepart"},
		{"empty label", "a..b", "domainpart"},
		{"leading dot", ".example.com", "domainpart"},
		{"two trailing dots", "example.com..", "domainpart"},
		{"dot only", ".", "domainpart"},
		{"dot only local", "a@./r", "domainpart"},
		{"leading hyphen", "a@-b.com", "domainpart"},
		{"trailing hyphen", "a@b-.com", "domainpart"},
		{"r-ldh", "a@ab--c.com", "domainpart"},
		{"bad punycode", "a@xn--a.com", "domainpart"},
		{"ascii punycode", "a@xn--abc-.com", "domainpart"},
		{"underscore", "a@under_score.example", "domainpart"},
		{"space domain", "a@exa mple.com", "domainpart"},
		{"port", "a@example.com:5222", "domainpart"},
		{"long label", long("a", 64) + ".com", "domainpart"},
		{"long u-label", long("\u00e9", 60) + ".com", "domainpart"},
		{"long domain", strings.Repeat(long("a", 63)+".", 16) + "com", "domainpart"},
		{"bad utf8 domain", "a@\xff.com", "domainpart"},
		{"symbol domain", "a@\u265a.com", "domainpart"},
		{"ipv6 open", "a@[::1", "domainpart"},
		{"ipv6 close", "a@::1]", "domainpart"},
		{"ipv4 literal", "[127.0.0.1]", "domainpart"},
		{"ipv6 zone", "[fe80::1%eth0]", "domainpart"},
		{"ipv6 dot", "[::1].", "domainpart"},
		{"ipv6 future", "[v1.x]", "domainpart"},
		{"ipv6 empty", "[]", "domainpart"},
		{"ipv6 bad", "[1:2:3:4:5:6:7:8:9]", "domainpart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error", tt.in, j)
			}
			if !errors.Is(err, ErrInvalidJID) {
				t.Errorf("Parse(%q): %v is not ErrInvalidJID", tt.in, err)
			}
			var je *JIDError
			if !errors.As(err, &je) {
				t.Fatalf("Parse(%q): %T is not *JIDError", tt.in, err)
			}
			if je.Part != tt.part || je.Input != tt.in || je.Reason == "" {
				t.Errorf("Parse(%q): got %+v, want part %q", tt.in, *je, tt.part)
			}
			if !j.IsZero() {
				t.Errorf("Parse(%q) returned non-zero JID %q with error", tt.in, j)
			}
			if _, err := ParseBytes([]byte(tt.in)); err == nil {
				t.Errorf("ParseBytes(%q) succeeded", tt.in)
			}
			dst := []byte("keep")
			out, p, err := AppendNorm(dst, []byte(tt.in))
			if err == nil || string(out) != "keep" || p != (Parts{}) {
				t.Errorf("AppendNorm(%q) = %q, %+v, %v; want dst unchanged and error", tt.in, out, p, err)
			}
		})
	}
}

func TestJIDEquality(t *testing.T) {
	same := [][2]string{
		{"Romeo@Montague.com", "romeo@montague.com"},
		{"xn--r8jz45g.xn--zckzah", "例え.テスト"},
		{"example.com.", "example.com"},
		{"juliet@[0:0:0:0:0:0:0:1]", "juliet@[::1]"},
		{"Σ@example.com", "σ@example.com"},
		{"e\u0301@example.com", "\u00e9@example.com"},
	}
	for _, p := range same {
		if a, b := MustParse(p[0]), MustParse(p[1]); a != b {
			t.Errorf("%q and %q differ: %q != %q", p[0], p[1], a, b)
		}
	}
	differ := [][2]string{
		{"romeo@example.com/Balcony", "romeo@example.com/balcony"},
		{"ς@example.com", "σ@example.com"},
		{"fussball@example.com", "fußball@example.com"},
		{"example.com", "example.com/r"},
		{"a@example.com", "example.com"},
	}
	for _, p := range differ {
		if a, b := MustParse(p[0]), MustParse(p[1]); a == b {
			t.Errorf("%q and %q are equal", p[0], p[1])
		}
	}
}

func TestJIDDerived(t *testing.T) {
	j := MustParse("Juliet@Example.com/Balcony")
	if diff := cmp.Diff(MustParse("juliet@example.com"), j.Bare(), cmp.AllowUnexported(JID{})); diff != "" {
		t.Errorf("Bare (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(MustParse("example.com"), j.Domainpart(), cmp.AllowUnexported(JID{})); diff != "" {
		t.Errorf("Domainpart (-want +got):\n%s", diff)
	}
	if d := MustParse("example.com/x").Domainpart(); d != MustParse("example.com") {
		t.Errorf("Domainpart of domain JID = %q", d)
	}
	if j.IsBare() || !j.Bare().IsBare() || j.IsZero() {
		t.Errorf("IsBare/IsZero wrong for %q", j)
	}

	var zero JID
	if !zero.IsZero() || zero.IsBare() || zero.HasLocal() || zero.String() != "" ||
		!zero.Bare().IsZero() || !zero.Domainpart().IsZero() ||
		zero.Local() != "" || zero.Domain() != "" || zero.Resource() != "" {
		t.Errorf("zero JID misbehaves: %+v", viewJID(zero))
	}
	if _, err := zero.WithResource("r"); !errors.Is(err, ErrInvalidJID) {
		t.Errorf("zero.WithResource: err = %v", err)
	}

	tests := []struct {
		base, res, want string
	}{
		{"juliet@example.com", "Balcony", "juliet@example.com/Balcony"},
		{"juliet@example.com/old", "new", "juliet@example.com/new"},
		{"example.com", "x y", "example.com/x y"},
		{"juliet@example.com", "e\u0301\u00a0\u265a", "juliet@example.com/\u00e9 \u265a"},
	}
	for _, tt := range tests {
		got, err := MustParse(tt.base).WithResource(tt.res)
		if err != nil {
			t.Errorf("WithResource(%q, %q): %v", tt.base, tt.res, err)
			continue
		}
		if want := MustParse(tt.want); got != want {
			t.Errorf("WithResource(%q, %q) = %q, want %q", tt.base, tt.res, got, want)
		}
	}
	for _, bad := range []string{"", "\x00", "\xff", strings.Repeat("r", 1024)} {
		_, err := j.WithResource(bad)
		var je *JIDError
		if !errors.As(err, &je) || je.Part != "resourcepart" {
			t.Errorf("WithResource(%q): err = %v, want resourcepart error", bad, err)
		}
	}
}

func TestJIDMustParsePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("MustParse did not panic on an invalid JID")
		}
	}()
	MustParse("@")
}

func TestJIDErrorText(t *testing.T) {
	_, err := Parse("foo bar@example.com")
	want := `stanza: invalid JID "foo bar@example.com": localpart: ` + jidReasonUsername
	if err == nil || err.Error() != want {
		t.Errorf("error text = %q, want %q", err, want)
	}
	_, err = Parse(strings.Repeat("a", 100) + "@")
	if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), `..."`) {
		t.Errorf("long input not truncated in %q", err)
	}
}

// TestJIDAppendNormAllocs pins the hot-path promise: ASCII input into a
// buffer with room costs no allocation, and neither does parsing an
// already-normalised string or taking its bare JID.
func TestJIDAppendNormAllocs(t *testing.T) {
	inputs := []string{
		"juliet@capulet.com/balcony",
		"Romeo@Montague.COM/Orchard Wall",
		"montague.com",
		"example.com.",
		"conference.example.org/nick name!",
		"juliet@[2001:DB8::1]/r",
		"x@[::ffff:192.0.2.1]",
		"juliet@192.0.2.1",
	}
	dst := make([]byte, 0, 512)
	for _, in := range inputs {
		src := []byte(in)
		allocs := testing.AllocsPerRun(100, func() {
			if _, _, err := AppendNorm(dst[:0], src); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("AppendNorm(%q): %v allocs, want 0", in, allocs)
		}
	}
	norm := "juliet@capulet.com/balcony"
	allocs := testing.AllocsPerRun(100, func() {
		j, err := Parse(norm)
		if err != nil || j.Bare().String() != "juliet@capulet.com" {
			t.Fatal(j, err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse of normalised JID: %v allocs, want 0", allocs)
	}
}

// jidCompareFastSlow checks that the fast path changes nothing but speed:
// the result, the parts and the error must be what PRECIS and IDNA alone
// would give, for both input types.
func jidCompareFastSlow(t *testing.T, in string) {
	t.Helper()
	type result struct {
		Out   string
		Parts Parts
		Err   *JIDError
	}
	run := func(out []byte, p Parts, err error) result {
		r := result{Out: string(out), Parts: p}
		if err != nil {
			if !errors.As(err, &r.Err) {
				t.Fatalf("%q: error %T is not *JIDError", in, err)
			}
		}
		return r
	}
	slow := run(jidAppendNorm(nil, in, true))
	fast := run(jidAppendNorm(nil, in, false))
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Fatalf("%q: fast path differs from slow path (-slow +fast):\n%s", in, diff)
	}
	fastBytes := run(jidAppendNorm(nil, []byte(in), false))
	if diff := cmp.Diff(slow, fastBytes); diff != "" {
		t.Fatalf("%q: []byte input differs from string input (-string +bytes):\n%s", in, diff)
	}
}

// jidRandomASCII builds JID-shaped ASCII strings: mostly a plausible
// localpart, domainpart and resourcepart, seasoned with every byte class
// that the fast path treats specially (upper case, forbidden and control
// characters, hyphens at label edges, "xn--", IP literals, dots), and
// sometimes plain byte soup.
func jidRandomASCII(r *rand.Rand) string {
	pick := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	var b strings.Builder
	if r.IntN(8) == 0 {
		for range r.IntN(24) {
			b.WriteByte(byte(r.IntN(128)))
		}
		return b.String()
	}
	if r.IntN(3) > 0 {
		b.WriteString(pick("abcxyzABCXYZ0189.-_!#$%*+=?^`{|}~\\", 1+r.IntN(12)))
		b.WriteByte('@')
	}
	switch r.IntN(12) {
	case 0:
		b.WriteString([]string{"[::1]", "[2001:DB8::1]", "[::ffff:192.0.2.1]", "[1:2:3:4:5:6:7:8]", "192.0.2.1"}[r.IntN(5)])
	default:
		for i := range 1 + r.IntN(4) {
			if i > 0 {
				b.WriteByte('.')
			}
			switch r.IntN(16) {
			case 0:
				b.WriteString("xn--")
			case 1:
				b.WriteString("XN--r8jz45g")
			case 2:
				b.WriteString(strings.Repeat("a", 60+r.IntN(8)))
			case 3:
				// An empty label.
				continue
			}
			b.WriteString(pick("abcdxyzABCXYZ0189-", 1+r.IntN(10)))
		}
		if r.IntN(8) == 0 {
			b.WriteByte('.')
		}
	}
	if r.IntN(2) == 0 {
		b.WriteByte('/')
		b.WriteString(pick("abcABC09 /@.-!~\"'&<>:", r.IntN(12)))
	}
	if r.IntN(20) == 0 {
		// Lengths near the 1023-byte limits.
		b.WriteString(strings.Repeat("a", 1015+r.IntN(16)))
	}
	out := []byte(b.String())
	for range r.IntN(3) / 2 {
		// A random ASCII byte (controls and DEL included) at a random
		// place.
		i := r.IntN(len(out) + 1)
		out = append(out[:i], append([]byte{byte(r.IntN(128))}, out[i:]...)...)
	}
	return string(out)
}

func TestJIDFastSlowProperty(t *testing.T) {
	n := 100000
	if testing.Short() {
		n = 5000
	}
	r := rand.New(rand.NewPCG(7622, 318))
	valid := 0
	for range n {
		in := jidRandomASCII(r)
		jidCompareFastSlow(t, in)
		if _, err := Parse(in); err == nil {
			valid++
		}
	}
	// Guard against a generator that only produces garbage, which would
	// make the comparison vacuous for the success path.
	t.Logf("%d of %d generated inputs were valid JIDs", valid, n)
	if valid < n/5 {
		t.Errorf("only %d of %d generated inputs were valid JIDs", valid, n)
	}
}

func TestJIDParseIPv6MatchesNetip(t *testing.T) {
	check := func(s string) {
		got, ok := jidParseIPv6(s)
		a, err := netip.ParseAddr(s)
		wantOK := err == nil && a.Is6() && a.Zone() == ""
		if ok != wantOK || (ok && got != a.As16()) {
			t.Fatalf("jidParseIPv6(%q) = %v, %v; netip says %v, %v", s, got, ok, a, err)
		}
		gotB, okB := jidParseIPv6([]byte(s))
		if gotB != got || okB != ok {
			t.Fatalf("jidParseIPv6([]byte(%q)) differs from string", s)
		}
	}
	for _, s := range []string{
		"", ":", "::", ":::", "::1", "1::", "1::2", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", "12345::", "ffff::", "FFFF::", "::ffff:1.2.3.4",
		"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4", "::1.2.3", "::1.2.3.04",
		"::1.2.3.256", "::0.0.0.0", "1.2.3.4", "::1:", ":1::", "1:", "::g", "0:0:0:0:0:0:0:0", "1::2:3:4:5:6:7",
		"::1.2.3.4.5", "::1..2.3", "::.1.2.3", "1:2:3:4:5:6::1.2.3.4", "a:b::c.1.2.3",
	} {
		check(s)
	}
	r := rand.New(rand.NewPCG(5952, 4291))
	const alphabet = "0123456789abcdefABCDEF:::::....g"
	for range 200000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		check(string(b))
	}
	for range 20000 {
		var ip [16]byte
		for i := range ip {
			if r.IntN(3) > 0 {
				ip[i] = byte(r.IntN(256))
			}
		}
		a := netip.AddrFrom16(ip)
		check(a.String())
		check(a.StringExpanded())
	}
}

// jidSeeds are the fuzzers' starting points: every shape the tables cover.
var jidSeeds = []string{
	"juliet@example.com/foo bar", `"juliet"@example.com`, "Romeo@Montague.com", "henry\u2163@example.com",
	"\u265a@example.com", "king@example.com/\u265a", "Σ@example.com/foo", "fußball@example.com",
	"xn--r8jz45g.xn--zckzah", "例え。テスト.", "juliet@[::1]", "juliet@192.0.2.1", "a..b", "@example.com/",
	"juliet@", "/foobar", "a@b-.com", "ＪＵＬＩＥＴ@ＥＸＡＭＰＬＥ.com/x\u00a0y", "e\u0301@example.com",
	"x@[::ffff:1.2.3.4]", "a@ab--c.com/x/y@z",
}

func FuzzJIDFastSlow(f *testing.F) {
	for _, s := range jidSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		jidCompareFastSlow(t, in)
	})
}

// FuzzJIDRoundTrip checks that normalisation is idempotent and that every
// derived JID is itself what Parse would produce, since the library relies
// on == between JIDs built in different ways.
func FuzzJIDRoundTrip(f *testing.F) {
	for _, s := range jidSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		j, err := Parse(in)
		if err != nil {
			return
		}
		again, err := Parse(j.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", in, j, err)
		}
		if again != j {
			t.Fatalf("not idempotent: %q -> %#v -> %#v", in, j, again)
		}
		for _, d := range []JID{j.Bare(), j.Domainpart()} {
			if p, err := Parse(d.String()); err != nil || p != d {
				t.Fatalf("derived JID %#v of %q reparses as %#v, %v", d, in, p, err)
			}
		}
		rebuilt := j.Domain()
		if j.HasLocal() {
			rebuilt = j.Local() + "@" + rebuilt
		}
		if !j.IsBare() {
			rebuilt += "/" + j.Resource()
			if w, err := j.Bare().WithResource(j.Resource()); err != nil || w != j {
				t.Fatalf("WithResource rebuilds %#v as %#v, %v", j, w, err)
			}
		}
		if rebuilt != j.String() {
			t.Fatalf("parts of %q reassemble to %q", j, rebuilt)
		}
	})
}

func BenchmarkJIDNormASCII(b *testing.B) {
	src := []byte("Juliet@Capulet.example/Balcony")
	dst := make([]byte, 0, 64)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := AppendNorm(dst[:0], src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJIDNormUnicode(b *testing.B) {
	src := []byte("Σωκράτης@Παράδειγμα.例え.テスト/♚ Βασιλιάς")
	dst := make([]byte, 0, 128)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := AppendNorm(dst[:0], src); err != nil {
			b.Fatal(err)
		}
	}
}
