package stanza

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// JID is an XMPP address (RFC 7622) held in normalised form.
//
// A JID is normalised once, when it is parsed, so that the rest of the
// library can compare addresses with == and use them as map keys without
// ever running PRECIS or IDNA again: two JIDs that RFC 7622 considers equal
// have identical fields. The zero value is "no JID", which is what an absent
// from or to attribute should decode to.
type JID struct {
	// s is the whole normalised JID, so that String and Bare are
	// substrings rather than fresh allocations.
	s string
	// localLen is the byte length of the localpart, 0 when there is none
	// (a localpart is never empty, so 0 is unambiguous).
	localLen int32
	// domainEnd is the index just past the domainpart: the '/' before the
	// resourcepart, or len(s) for a bare JID.
	domainEnd int32
}

// Limits from RFC 7622 §3.2–3.4: each part is at most 1023 bytes once
// normalised, and every DNS label at most 63 bytes in its ASCII (A-label)
// form, since that is what goes on the wire to DNS.
const (
	jidMaxPart  = 1023
	jidMaxLabel = 63
	jidMaxLen   = 3*jidMaxPart + 2
	// jidMaxInput bounds the raw input. Normalisation can shrink text (NFC
	// composes, IDNA deletes ignorable code points), so the raw bound must
	// be looser than jidMaxLen; four times is ample for real addresses and
	// still stops a hostile multi-megabyte attribute before PRECIS runs.
	jidMaxInput = 4 * jidMaxLen
)

// ErrInvalidJID is matched, through errors.Is, by every error that Parse,
// ParseBytes, AppendNorm and WithResource return, so callers can classify
// bad input without inspecting the details.
var ErrInvalidJID = errors.New("stanza: invalid JID")

// JIDError reports why an address was rejected. It is returned as a
// *JIDError so that callers who need the detail (for a stanza error text or
// a log line) can get at the part that failed with errors.As.
type JIDError struct {
	// Input is the text that was being normalised: the whole JID for
	// Parse, ParseBytes and AppendNorm, and the new resourcepart for
	// WithResource.
	Input string
	// Part names the part at fault: "localpart", "domainpart",
	// "resourcepart", or "jid" when the address as a whole is wrong (empty
	// or too long).
	Part string
	// Reason is a short human-readable explanation.
	Reason string
}

// Error quotes at most the first 64 bytes of the input, because inputs come
// from the network and a log line should not grow with an attacker's
// attribute.
func (e *JIDError) Error() string {
	in := e.Input
	if len(in) > 64 {
		// Cut on a rune boundary so the quoted text stays readable.
		n := 64
		for n > 0 && !utf8.RuneStart(in[n]) {
			n--
		}
		in = in[:n] + "..."
	}
	return "stanza: invalid JID " + strconv.Quote(in) + ": " + e.Part + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalidJID) true, so callers need not know the
// concrete error type to recognise bad addresses.
func (e *JIDError) Is(target error) bool { return target == ErrInvalidJID }

// Parts gives the byte lengths of the parts of a normalised JID as written
// by AppendNorm (0 = absent). It lets a caller that keeps the normalised
// bytes in its own buffer slice out the bare JID or the resource without
// searching for separators again.
type Parts struct {
	// Local is the length of the localpart, without the '@'.
	Local int
	// Domain is the length of the domainpart.
	Domain int
	// Resource is the length of the resourcepart, without the '/'.
	Resource int
}

// Bare returns the length of the bare JID (localpart@domainpart), which is
// a prefix of the normalised form, so buf[:p.Bare()] is the bare address.
func (p Parts) Bare() int {
	if p.Local > 0 {
		return p.Local + 1 + p.Domain
	}
	return p.Domain
}

// Parse normalises s into a JID. When s is already in normalised form (the
// usual case for addresses that servers have already processed) the JID
// shares s's memory and Parse does not allocate.
func Parse(s string) (JID, error) {
	// The stack buffer keeps normalisation of short addresses off the heap;
	// only a result that differs from s costs the string allocation.
	var buf [256]byte
	out, p, err := jidAppendNorm(buf[:0], s, false)
	if err != nil {
		return JID{}, err
	}
	if string(out) == s {
		return jidFromParts(s, p), nil
	}
	return jidFromParts(string(out), p), nil
}

// ParseBytes is Parse for input that arrives as bytes, such as an attribute
// value from the XML decoder; it saves the caller a string conversion of
// the raw, unnormalised text.
func ParseBytes(b []byte) (JID, error) {
	var buf [256]byte
	out, p, err := jidAppendNorm(buf[:0], b, false)
	if err != nil {
		return JID{}, err
	}
	return jidFromParts(string(out), p), nil
}

// MustParse is Parse for addresses known to be valid, such as constants in
// tests and examples; it panics so that a typo fails loudly at start-up.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// AppendNorm appends the normalised form of src to dst. It does not
// allocate when src is a valid ASCII JID and dst has enough capacity,
// because such input (the overwhelming majority on real servers) is
// normalised by a hand-written fast path instead of PRECIS and IDNA. The
// exceptions are domain labels that IDNA must inspect: "xn--" A-labels and
// other labels with "--" in the third and fourth positions.
//
// It exists for callers on the hot path that keep JIDs in their own
// buffers, for instance to compare an incoming from attribute against a
// session without creating a JID. The returned Parts describe the bytes
// appended. On error dst is returned unchanged, with a *JIDError.
func AppendNorm(dst, src []byte) ([]byte, Parts, error) {
	return jidAppendNorm(dst, src, false)
}

func jidFromParts(s string, p Parts) JID {
	return JID{s: s, localLen: int32(p.Local), domainEnd: int32(p.Bare())}
}

// String returns the normalised "localpart@domainpart/resourcepart" form,
// which is the form every JID written to the network must take, and "" for
// the zero JID. It does not allocate.
func (j JID) String() string { return j.s }

// Local returns the normalised localpart, or "" when the JID has none (a
// domain or component address).
func (j JID) Local() string { return j.s[:j.localLen] }

// Domain returns the normalised domainpart: U-labels (not "xn--" A-labels),
// lower case, without a trailing dot, or a bracketed IPv6 literal in
// RFC 5952 form.
func (j JID) Domain() string { return j.s[j.domainStart():j.domainEnd] }

// Resource returns the resourcepart, or "" for a bare JID. Resources are
// compared case-sensitively, so this is the client's text after only
// OpaqueString normalisation.
func (j JID) Resource() string {
	if int(j.domainEnd) >= len(j.s) {
		return ""
	}
	return j.s[j.domainEnd+1:]
}

func (j JID) domainStart() int32 {
	if j.localLen > 0 {
		return j.localLen + 1
	}
	return 0
}

// Bare returns the JID without its resourcepart. It is a substring of j and
// so never allocates, which matters because presence state is keyed by bare
// JID on every stanza.
func (j JID) Bare() JID {
	return JID{s: j.s[:j.domainEnd], localLen: j.localLen, domainEnd: j.domainEnd}
}

// Domainpart returns just the domain as a JID, the address of the server or
// component that hosts j; it does not allocate.
func (j JID) Domainpart() JID {
	start := j.domainStart()
	return JID{s: j.s[start:j.domainEnd], domainEnd: j.domainEnd - start}
}

// IsBare reports whether j is a non-zero JID without a resourcepart; the
// zero JID is not an address at all and so is neither bare nor full.
func (j JID) IsBare() bool { return j.s != "" && int(j.domainEnd) == len(j.s) }

// IsZero reports whether j is the zero JID, which stands for "no address".
func (j JID) IsZero() bool { return j.s == "" }

// HasLocal reports whether j has a localpart, which tells a user's address
// from a server's or a component's.
func (j JID) HasLocal() bool { return j.localLen > 0 }

// WithResource returns the full JID made of j's bare JID and the resource
// r, normalised. It rejects an empty r rather than returning the bare JID,
// because an empty resourcepart is invalid and silently dropping it would
// hide a caller's bug; use Bare for that. It also fails on the zero JID.
func (j JID) WithResource(r string) (JID, error) {
	if j.s == "" {
		return JID{}, &JIDError{Input: r, Part: "jid", Reason: "no domainpart to attach a resource to"}
	}
	if r == "" {
		return JID{}, &JIDError{Input: r, Part: "resourcepart", Reason: "empty"}
	}
	bare := j.s[:j.domainEnd]
	if len(r) <= jidMaxPart && jidResourceFast(r) {
		// Already normalised: one allocation for the concatenation.
		return JID{s: bare + "/" + r, localLen: j.localLen, domainEnd: j.domainEnd}, nil
	}
	if len(r) > jidMaxInput {
		return JID{}, &JIDError{Input: r, Part: "resourcepart", Reason: "too long"}
	}
	buf := make([]byte, 0, len(bare)+1+len(r))
	buf = append(buf, bare...)
	buf = append(buf, '/')
	buf, reason := jidAppendResource(buf, r, true)
	if reason != "" {
		return JID{}, &JIDError{Input: r, Part: "resourcepart", Reason: reason}
	}
	return JID{s: string(buf), localLen: j.localLen, domainEnd: j.domainEnd}, nil
}

// Error reasons are shared by the fast and slow paths so that a test can
// demand identical errors from both.
const (
	jidReasonEmpty      = "empty"
	jidReasonTooLong    = "longer than 1023 bytes"
	jidReasonUTF8       = "not valid UTF-8"
	jidReasonForbidden  = `contains one of the forbidden characters "&'/:<>@`
	jidReasonUsername   = "not allowed by the PRECIS UsernameCaseMapped profile"
	jidReasonOpaque     = "not allowed by the PRECIS OpaqueString profile"
	jidReasonIDNA       = "not a valid IDNA2008 domain name"
	jidReasonEmptyLabel = "empty label"
	jidReasonLongLabel  = "label longer than 63 bytes"
	jidReasonIPv6       = "not a valid IPv6 address literal"
)

// jidIDNA is the Lookup profile (UTS #46 mapping, STD3 rules, hyphen, joiner
// and bidi checks, non-transitional) spelled out so that a change to
// x/net's default cannot silently change which JIDs we accept. It rejects
// '_' in domain labels (STD3), unlike some XMPP servers.
var jidIDNA = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.StrictDomainName(true),
)

// jidAppendNorm is AppendNorm for both input types. slowOnly forces the
// PRECIS and IDNA path for every part; the tests use it to prove that the
// ASCII fast path computes exactly the same function.
func jidAppendNorm[T string | []byte](dst []byte, src T, slowOnly bool) ([]byte, Parts, error) {
	fail := func(part, reason string) ([]byte, Parts, error) {
		return dst, Parts{}, &JIDError{Input: string(src), Part: part, Reason: reason}
	}
	if len(src) == 0 {
		return fail("jid", jidReasonEmpty)
	}
	if len(src) > jidMaxInput {
		return fail("jid", "too long")
	}
	// RFC 7622 §3.2: the resourcepart starts after the first '/', and the
	// localpart ends at the first '@' before that '/'. Splitting happens
	// before any mapping, so a full-width '＠' never acts as a separator.
	slash := jidIndexByte(src, '/')
	if slash < 0 {
		slash = len(src)
	}
	at := jidIndexByte(src[:slash], '@')
	local, domain := src[:0], src[:slash]
	if at >= 0 {
		local, domain = src[:at], src[at+1:slash]
		if at == 0 {
			return fail("localpart", jidReasonEmpty)
		}
	}
	if len(domain) == 0 {
		return fail("domainpart", jidReasonEmpty)
	}
	if slash == len(src)-1 {
		return fail("resourcepart", jidReasonEmpty)
	}

	out := dst
	var p Parts
	var reason string
	if at > 0 {
		out, reason = jidAppendLocal(out, local, slowOnly)
		if reason != "" {
			return fail("localpart", reason)
		}
		p.Local = len(out) - len(dst)
		out = append(out, '@')
	}
	mark := len(out)
	out, reason = jidAppendDomain(out, domain, slowOnly)
	if reason != "" {
		return fail("domainpart", reason)
	}
	p.Domain = len(out) - mark
	if slash < len(src) {
		out = append(out, '/')
		mark = len(out)
		out, reason = jidAppendResource(out, src[slash+1:], slowOnly)
		if reason != "" {
			return fail("resourcepart", reason)
		}
		p.Resource = len(out) - mark
	}
	return out, p, nil
}

// jidIndexByte is strings.IndexByte or bytes.IndexByte, whose vectorised
// search beats a byte loop in generic code; the type switch is resolved at
// compile time for each instantiation and does not allocate.
func jidIndexByte[T string | []byte](s T, c byte) int {
	switch v := any(s).(type) {
	case string:
		return strings.IndexByte(v, c)
	case []byte:
		return bytes.IndexByte(v, c)
	}
	panic("unreachable")
}

// Byte classes for the ASCII fast paths, looked up in jidClass so that
// each byte costs one load and a mask instead of a chain of comparisons.
const (
	// jidLocalOK: printable ASCII other than the characters that
	// RFC 7622 §3.3.1 bans from localparts although PRECIS IdentifierClass
	// allows them.
	jidLocalOK = 1 << iota
	// jidLDH: letter, digit or hyphen, the bytes of a DNS label.
	jidLDH
	// jidResourceOK: printable ASCII including space, which OpaqueString
	// leaves unchanged.
	jidResourceOK
	// jidUpper: 'A'..'Z', which the localpart and domainpart fold.
	jidUpper
)

var jidClass = func() (t [256]uint8) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] |= jidResourceOK
		if c != ' ' && !strings.ContainsRune(`"&'/:<>@`, rune(c)) {
			t[c] |= jidLocalOK
		}
		if c >= 'A' && c <= 'Z' {
			t[c] |= jidUpper | jidLDH
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			t[c] |= jidLDH
		}
	}
	return t
}()

// jidAppendLower appends s to dst, folding 'A'..'Z' only when the scan
// found some, so that already-normalised input is a plain copy.
func jidAppendLower[T string | []byte](dst []byte, s T, upper bool) []byte {
	start := len(dst)
	dst = append(dst, s...)
	if upper {
		for i := start; i < len(dst); i++ {
			if jidClass[dst[i]]&jidUpper != 0 {
				dst[i] += 'a' - 'A'
			}
		}
	}
	return dst
}

// jidAppendLocal appends the normalised localpart l (non-empty) and returns
// a non-empty reason if it is invalid.
//
// The fast path covers localparts of printable ASCII without forbidden
// characters, for which UsernameCaseMapped reduces to ASCII lower-casing.
// Anything else, including every invalid input, goes to PRECIS so that
// there is only one source of truth for errors.
func jidAppendLocal[T string | []byte](dst []byte, l T, slowOnly bool) ([]byte, string) {
	if !slowOnly && len(l) <= jidMaxPart {
		all, seen := uint8(jidLocalOK), uint8(0)
		for i := 0; i < len(l); i++ {
			c := jidClass[l[i]]
			all &= c
			seen |= c
		}
		if all != 0 {
			return jidAppendLower(dst, l, seen&jidUpper != 0), ""
		}
	}
	s := string(l)
	if !utf8.ValidString(s) {
		return dst, jidReasonUTF8
	}
	n, err := precis.UsernameCaseMapped.String(s)
	if err != nil {
		return dst, jidReasonUsername
	}
	// Checked after mapping: width folding turns '＂' into '"'.
	if strings.ContainsAny(n, `"&'/:<>@`) {
		return dst, jidReasonForbidden
	}
	if len(n) == 0 {
		return dst, jidReasonEmpty
	}
	if len(n) > jidMaxPart {
		return dst, jidReasonTooLong
	}
	return append(dst, n...), ""
}

// jidResourceFast reports whether r is printable ASCII (space included),
// which OpaqueString leaves unchanged.
func jidResourceFast[T string | []byte](r T) bool {
	all := uint8(jidResourceOK)
	for i := 0; i < len(r); i++ {
		all &= jidClass[r[i]]
	}
	return all != 0
}

// jidAppendResource appends the normalised resourcepart r (non-empty).
// Printable ASCII is copied as is; everything else goes through PRECIS
// OpaqueString, which maps non-ASCII spaces to U+0020, applies NFC and
// rejects controls and unassigned code points.
func jidAppendResource[T string | []byte](dst []byte, r T, slowOnly bool) ([]byte, string) {
	if !slowOnly && len(r) <= jidMaxPart && jidResourceFast(r) {
		return append(dst, r...), ""
	}
	s := string(r)
	if !utf8.ValidString(s) {
		return dst, jidReasonUTF8
	}
	n, err := precis.OpaqueString.String(s)
	if err != nil {
		return dst, jidReasonOpaque
	}
	if len(n) == 0 {
		return dst, jidReasonEmpty
	}
	if len(n) > jidMaxPart {
		return dst, jidReasonTooLong
	}
	return append(dst, n...), ""
}

// jidSeparators maps the label separators that RFC 7622 §3.2 accepts
// besides '.' (ideographic, full-width and half-width full stops).
var jidSeparators = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".")

// jidAppendDomain appends the normalised domainpart d (non-empty).
//
// A dotted-quad IPv4 address is also a valid LDH name and comes out
// unchanged either way, so it needs no case of its own; a look-alike such
// as "999.1.1.1" is accepted as a DNS name, as IDNA does.
//
// The fast path covers lower- or upper-case LDH names whose labels are
// 1..63 bytes, do not start or end with '-', and have no "--" in the third
// and fourth positions (which would make them "xn--" A-labels or reserved
// R-LDH labels that IDNA must inspect). For those names UTS #46 mapping is
// ASCII lower-casing. Everything else goes through IDNA.
func jidAppendDomain[T string | []byte](dst []byte, d T, slowOnly bool) ([]byte, string) {
	// An IP literal is not a DNS name: no mapping, no trailing-dot removal.
	if d[0] == '[' {
		return jidAppendIPLiteral(dst, d)
	}
	if !slowOnly {
		if out, ok := jidAppendLDH(dst, d); ok {
			return out, ""
		}
	}
	s := string(d)
	if !utf8.ValidString(s) {
		return dst, jidReasonUTF8
	}
	// RFC 7622 §3.2 counts U+3002, U+FF0E and U+FF61 as label separators;
	// map them first so that a trailing ideographic full stop is stripped
	// like a trailing '.'.
	s = jidSeparators.Replace(s)
	// RFC 7622 §3.2: a single trailing dot (the DNS root) is not part of
	// the JID.
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return dst, jidReasonEmpty
	}
	a, err := jidIDNA.ToASCII(s)
	if err != nil {
		return dst, jidReasonIDNA
	}
	// x/net/idna only checks label lengths with VerifyDNSLength, which also
	// caps the name at 253 bytes; RFC 7622 allows 1023, so check labels
	// here, on the A-label form that DNS actually limits.
	for rest := a; ; {
		label, tail, more := strings.Cut(rest, ".")
		if label == "" {
			return dst, jidReasonEmptyLabel
		}
		if len(label) > jidMaxLabel {
			return dst, jidReasonLongLabel
		}
		if !more {
			break
		}
		rest = tail
	}
	// Store U-labels so that "xn--r8jz45g" and "例え" are the same JID.
	u, err := jidIDNA.ToUnicode(a)
	if err != nil {
		return dst, jidReasonIDNA
	}
	// x/net/idna implements UTS #46, which lets through code points that
	// IDNA2008 (RFC 5892) disallows, such as symbols ("♚.example"). PRECIS
	// IdentifierClass is derived from the same RFC 5892 categories, so it
	// serves as the IDNA2008 check; it cannot map anything here because
	// UTS #46 has already lower-cased and normalised u.
	if !jidIsASCII(u) {
		if v, err := jidDomainClass.String(u); err != nil || v != u {
			return dst, jidReasonIDNA
		}
	}
	if len(u) > jidMaxPart {
		return dst, jidReasonTooLong
	}
	return append(dst, u...), ""
}

// jidDomainClass checks U-labels against PRECIS IdentifierClass; see
// jidAppendDomain.
var jidDomainClass = precis.NewIdentifier()

func jidIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// jidAppendLDH is the domain fast path described at jidAppendDomain. It
// reports false, with dst unchanged, when the name needs the slow path; it
// never decides that a name is invalid.
func jidAppendLDH[T string | []byte](dst []byte, d T) ([]byte, bool) {
	n := len(d)
	if d[n-1] == '.' {
		n--
	}
	if n == 0 || n > jidMaxPart {
		return dst, false
	}
	all, seen := uint8(jidLDH), uint8(0)
	labelStart := 0
	for i := 0; i <= n; i++ {
		if i < n && d[i] != '.' {
			c := jidClass[d[i]]
			all &= c
			seen |= c
			continue
		}
		l := i - labelStart
		if l == 0 || l > jidMaxLabel || d[labelStart] == '-' || d[i-1] == '-' ||
			(l >= 4 && d[labelStart+2] == '-' && d[labelStart+3] == '-') {
			return dst, false
		}
		labelStart = i + 1
	}
	if all == 0 {
		return dst, false
	}
	return jidAppendLower(dst, d[:n], seen&jidUpper != 0), true
}

// jidAppendIPLiteral appends the bracketed IPv6 literal d (RFC 7622 §3.2
// allows only IPv6 in brackets) in RFC 5952 canonical form, so that
// "[0:0::1]" and "[::1]" are the same JID. Zones are refused: they are local
// to a host and mean nothing in an address sent to others.
func jidAppendIPLiteral[T string | []byte](dst []byte, d T) ([]byte, string) {
	if len(d) < 2 || d[len(d)-1] != ']' {
		return dst, jidReasonIPv6
	}
	ip, ok := jidParseIPv6(d[1 : len(d)-1])
	if !ok {
		return dst, jidReasonIPv6
	}
	dst = append(dst, '[')
	dst = netip.AddrFrom16(ip).AppendTo(dst)
	return append(dst, ']'), ""
}

// jidParseIPv6 parses an IPv6 address without a zone. It duplicates
// netip.ParseAddr because that takes a string, and converting a []byte
// argument would cost an allocation on the hot path; a test checks it
// against netip.
func jidParseIPv6[T string | []byte](s T) (ip [16]byte, ok bool) {
	ellipsis := -1 // index in ip where "::" stands, if any
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return ip, true
		}
	}
	i := 0
	for i < 16 {
		var acc uint32
		off := 0
	digits:
		for ; off < len(s); off++ {
			c := s[off]
			var v byte
			switch {
			case '0' <= c && c <= '9':
				v = c - '0'
			case 'a' <= c && c <= 'f':
				v = c - 'a' + 10
			case 'A' <= c && c <= 'F':
				v = c - 'A' + 10
			default:
				break digits
			}
			if off == 4 {
				return ip, false
			}
			acc = acc<<4 | uint32(v)
		}
		if off < len(s) && s[off] == '.' {
			// An embedded IPv4 address fills the last 32 bits.
			if (ellipsis < 0 && i != 12) || i+4 > 16 {
				return ip, false
			}
			v4, ok := jidParseIPv4(s)
			if !ok {
				return ip, false
			}
			copy(ip[i:], v4[:])
			i += 4
			s = s[:0]
			break
		}
		if off == 0 {
			return ip, false
		}
		ip[i] = byte(acc >> 8)
		ip[i+1] = byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return ip, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return ip, false
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return ip, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return ip, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		// "::" must stand for at least one group of zeros.
		return ip, false
	}
	return ip, true
}

// jidParseIPv4 parses a dotted-quad IPv4 address, refusing leading zeros
// as netip does (they are octal to some parsers).
func jidParseIPv4[T string | []byte](s T) (ip [4]byte, ok bool) {
	pos, val, digits := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			if digits == 1 && val == 0 {
				return ip, false
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return ip, false
			}
		case c == '.':
			if digits == 0 || pos == 3 {
				return ip, false
			}
			ip[pos] = byte(val)
			pos++
			val, digits = 0, 0
		default:
			return ip, false
		}
	}
	if pos != 3 || digits == 0 {
		return ip, false
	}
	ip[3] = byte(val)
	return ip, true
}
