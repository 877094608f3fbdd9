package stanza

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse is a differential test of the stanza parser against
// encoding/xml. (etree is not a second oracle: it tokenises with
// encoding/xml, so it would agree with it by construction.)
//
// # The shared subset
//
// encoding/xml (Strict, no Entity map, no AutoClose) is a tokenizer for full
// XML 1.0 and is lenient in places; the stanza parser accepts only the XMPP
// subset of RFC 6120 §11. The oracle is therefore encoding/xml's verdict
// plus the checks below, each a rule of XML 1.0, Namespaces in XML 1.0 or
// RFC 6120 §11 that encoding/xml does not enforce (each was found to be
// accepted by encoding/xml on Go 1.26). An input is refused by the oracle
// when encoding/xml refuses it or any check fails:
//
//   - R0 characters: the input must be UTF-8 made of XML 1.0 Chars
//     (§2.2) throughout; encoding/xml checks text and attribute values but
//     not the inside of comments, processing instructions and directives.
//   - R1 size and shape limits: longer than Limits.MaxBytes, nesting deeper
//     than MaxDepth, more than MaxAttrs attributes (declarations included)
//     on one element, more than MaxAttrs namespace declarations in scope.
//     The fuzzer uses small limits so that these paths run.
//   - R2 RFC 6120 §11.1: any comment, processing instruction (the XML
//     declaration included) or <!…> directive (a DTD) is refused; we
//     refuse these deliberately, encoding/xml returns them as tokens.
//   - R3 one root: no second element and no non-white-space text after the
//     root; no non-white-space text (a byte order mark included) before it.
//   - R4 QNames: an element or attribute name with an empty prefix or an
//     empty local part (":a", "a:") is refused, encoding/xml taking it as a
//     local name with a colon; so is one whose local part does not start
//     with a name start character ("xml:0"), encoding/xml checking only
//     the first character of the whole name.
//   - R5 attributes: two attributes with the same name, or with the same
//     namespace and local name, are refused (XML 1.0 §3.1 "Unique Att
//     Spec", Namespaces §6.3); so are attributes not separated by white
//     space (`a='1'b='2'`), which encoding/xml reads as two.
//   - R6 namespaces (Namespaces in XML 1.0 §3, §5): an undeclared prefix,
//     the xmlns prefix on an element, declaring the xmlns prefix, binding
//     xml to anything but its namespace, binding any other prefix (or the
//     default namespace) to the xml or xmlns namespace, and undeclaring a
//     prefix (xmlns:p=”) are refused. encoding/xml accepts all of these.
//
// Excluded from the accept/reject comparison (the input is only checked not
// to panic, and compared in full if both accept):
//
//   - X1 non-ASCII bytes inside a tag outside quoted values, that is names
//     with non-ASCII characters: encoding/xml checks them against the XML
//     1.0 fourth edition's Appendix B tables, we against the fifth
//     edition's NameStartChar/NameChar productions, and the two disagree by
//     design.
//
// Excluded altogether (only checked not to panic):
//
//   - X2 a literal CR in the value of a namespace declaration. XML 1.0
//     §3.3.3 turns literal white space in attribute values into spaces;
//     encoding/xml only folds CR and CR LF into LF, and the stanza parser
//     takes the value as written (references decoded). No namespace that
//     means anything to XMPP holds white space, so no reading of such a
//     declaration can match one; the three readings differ only in
//     whether two such declarations name the same namespace.
//   - X3 an element whose unprefixed name is xmlns: encoding/xml leaves it
//     in no namespace, whatever default namespace is in scope; the parser
//     gives it the default namespace, as Namespaces in XML 1.0 §6.2 says.
//
// When both accept, the root's expanded name, its attributes (namespace
// declarations included, values decoded), and the sequence of its
// top-level children (element expanded names and the decoded text between
// them) must be equal. Text and attribute values are compared after XML 1.0
// §2.11 line-end normalisation of the literal characters, which
// encoding/xml applies and the stanza parser leaves to whoever decodes.
//
// When the oracle refuses only for R2 (and the input is not a <!…>
// directive other than a DTD, which is malformed rather than restricted),
// the error must be ErrRestricted.
func FuzzParse(f *testing.F) {
	for _, s := range xmlFuzzSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p := Parser{Limits: fuzzLimits}
		el, err := p.Parse(in)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *SyntaxError: %v", err, err)
			}
			n := 0
			for _, c := range []error{ErrMalformed, ErrRestricted, ErrTooLarge, ErrTooComplex} {
				if errors.Is(err, c) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v matches %d classes, want exactly one", err, n)
			}
		}
		o := oracle(in, fuzzLimits)
		switch {
		case o.skip:
			return // X2, X3
		case o.excluded != "" && (err == nil) != o.ok():
			return // X1: the two disagree by design on this input
		case err == nil && !o.ok():
			t.Fatalf("parser accepts %q; the oracle refuses it: %s", in, strings.Join(o.reasons, "; "))
		case err != nil && o.ok():
			t.Fatalf("parser refuses %q (%v); encoding/xml and the oracle accept it", in, err)
		case err != nil:
			if len(o.reasons) == 1 && o.restricted && !errors.Is(err, ErrRestricted) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("parser refuses %q with %v; want ErrRestricted (%s)", in, err, o.reasons[0])
			}
			return
		}
		got := viewOf(el)
		if diff := cmp.Diff(o.view, got); diff != "" {
			t.Fatalf("view of %q differs (-encoding/xml +parser):\n%s", in, diff)
		}
		// The iq view and the Last Activity check against encoding/xml's
		// reading of the same stanza.
		var pr Presence
		var iq IQ
		isIQ, serr := p.ParseStanza(in, &pr, &iq)
		if want := lastActivityOracle(o.view); isIQ && serr == nil && (iq.CheckLastActivity() == nil) != want {
			t.Fatalf("CheckLastActivity(%q) = %v; encoding/xml's view says a Last Activity query: %v", in, iq.CheckLastActivity(), want)
		} else if want && (!isIQ || serr != nil) {
			t.Fatalf("ParseStanza(%q) = %v, %v; encoding/xml's view is a Last Activity query", in, isIQ, serr)
		}
	})
}

// lastActivityOracle judges from encoding/xml's view whether a stanza is a
// Last Activity query: an iq in a content namespace, type get, an id, and
// one child element <query xmlns='jabber:iq:last'/> with only white space
// beside it.
func lastActivityOracle(v view) bool {
	if v.Root != "{}iq" && v.Root != "{"+NSClient+"}iq" && v.Root != "{"+NSServer+"}iq" {
		return false
	}
	var get, id bool
	for _, a := range v.Attrs {
		get = get || a == "{}type=get"
		id = id || strings.HasPrefix(a, "{}id=")
	}
	queries := 0
	for _, k := range v.Kids {
		switch {
		case k == "<{"+NSLast+"}query>":
			queries++
		case strings.HasPrefix(k, "<{"):
			return false
		case strings.Trim(k, " \t\r\n") != "":
			return false
		}
	}
	return get && id && queries == 1
}

// fuzzLimits are small enough that the fuzzer reaches them.
var fuzzLimits = Limits{MaxBytes: 4096, MaxDepth: 6, MaxAttrs: 6}

// view is what both parsers must agree on for an accepted input.
type view struct {
	Root  string   // {space}local
	Attrs []string // {space}local=value, or xmlns[:prefix]=uri, in order
	Kids  []string // "<{space}local>" for elements, decoded text between them
}

func viewOf(el *Element) view {
	v := view{Root: "{" + string(el.Space) + "}" + string(el.Local)}
	for i := range el.Attrs {
		a := &el.Attrs[i]
		val := string(normRefs(nil, a.Raw))
		switch {
		case a.Decl && a.Prefix == nil:
			v.Attrs = append(v.Attrs, "xmlns="+val)
		case a.Decl:
			v.Attrs = append(v.Attrs, "xmlns:"+string(a.Local)+"="+val)
		default:
			v.Attrs = append(v.Attrs, "{"+string(a.Space)+"}"+string(a.Local)+"="+val)
		}
	}
	text := []byte(nil)
	flush := func() {
		if len(text) > 0 {
			v.Kids = append(v.Kids, string(text))
			text = nil
		}
	}
	for _, n := range el.Children {
		if n.Text {
			text = decodeText(text, el.Raw[n.Start:n.End])
			continue
		}
		flush()
		v.Kids = append(v.Kids, "<{"+string(n.Space)+"}"+string(n.Local)+">")
	}
	flush()
	return v
}

// decodeText appends the character data of raw (text and CDATA sections)
// to dst, references decoded and line ends normalised.
func decodeText(dst, raw []byte) []byte {
	for len(raw) > 0 {
		i := bytes.Index(raw, []byte("<![CDATA["))
		if i < 0 {
			return normRefs(dst, raw)
		}
		dst = normRefs(dst, raw[:i])
		raw = raw[i+9:]
		end := bytes.Index(raw, []byte("]]>"))
		dst = normLit(dst, raw[:end])
		raw = raw[end+3:]
	}
	return dst
}

// normRefs appends raw text or attribute value, references decoded, with
// XML 1.0 §2.11 line-end handling of the literal characters: CR LF and a
// lone CR become LF. A CR written as &#13; stays.
func normRefs(dst, raw []byte) []byte {
	for len(raw) > 0 {
		amp := bytes.IndexByte(raw, '&')
		if amp < 0 {
			return normLit(dst, raw)
		}
		dst = normLit(dst, raw[:amp])
		end := bytes.IndexByte(raw[amp:], ';') + amp
		dst = appendDecoded(dst, raw[amp:end+1])
		raw = raw[end+1:]
	}
	return dst
}

func normLit(dst, lit []byte) []byte {
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c == '\r' {
			c = '\n'
			if i+1 < len(lit) && lit[i+1] == '\n' {
				i++
			}
		}
		dst = append(dst, c)
	}
	return dst
}

type verdict struct {
	reasons    []string // why the oracle refuses; empty when it accepts
	restricted bool     // one of the reasons is R2
	excluded   string   // why accept/reject is not compared (X1)
	skip       bool     // X2, X3: nothing is compared
	view       view
}

func (v *verdict) ok() bool { return len(v.reasons) == 0 }

func (v *verdict) refuse(why string) { v.reasons = append(v.reasons, why) }

// oracle judges in with encoding/xml and the checks listed on FuzzParse.
func oracle(in []byte, lim Limits) verdict {
	var v verdict
	lim = lim.norm()
	if len(in) > lim.MaxBytes {
		v.refuse("R1 too large")
		return v
	}
	if !xmlChars(in) {
		v.refuse("R0 not XML characters")
	}
	lexical(in, &v)

	// Pass 1: Token checks well-formedness, matches end tags and resolves
	// namespaces; it gives the view.
	d := xml.NewDecoder(bytes.NewReader(in))
	depth, roots := 0, 0
	var text []byte
	flush := func() {
		if len(text) > 0 {
			v.view.Kids = append(v.view.Kids, string(text))
			text = nil
		}
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			v.refuse("encoding/xml: " + err.Error())
			return v
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Space == "" && tok.Name.Local == "xmlns" {
				v.skip = true // X3
			}
			if depth == 0 {
				roots++
				if roots == 2 {
					v.refuse("R3 second root element")
				}
			}
			depth++
			if depth > lim.MaxDepth {
				v.refuse("R1 too deep")
			}
			if len(tok.Attr) > lim.MaxAttrs {
				v.refuse("R1 too many attributes")
			}
			if roots == 1 && depth == 1 {
				v.view.Root = "{" + tok.Name.Space + "}" + tok.Name.Local
				for _, a := range tok.Attr {
					switch {
					case a.Name.Space == "" && a.Name.Local == "xmlns":
						v.view.Attrs = append(v.view.Attrs, "xmlns="+a.Value)
					case a.Name.Space == "xmlns":
						v.view.Attrs = append(v.view.Attrs, "xmlns:"+a.Name.Local+"="+a.Value)
					default:
						v.view.Attrs = append(v.view.Attrs, "{"+a.Name.Space+"}"+a.Name.Local+"="+a.Value)
					}
				}
			}
			if roots == 1 && depth == 2 {
				flush()
				v.view.Kids = append(v.view.Kids, "<{"+tok.Name.Space+"}"+tok.Name.Local+">")
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 {
				if len(bytes.Trim(tok, " \t\r\n")) > 0 {
					v.refuse("R3 text outside the root element")
				}
			} else if roots == 1 && depth == 1 {
				text = append(text, tok...)
			}
		case xml.Comment:
			v.refuse("R2 comment")
			v.restricted = true
		case xml.ProcInst:
			v.refuse("R2 processing instruction")
			v.restricted = true
		case xml.Directive:
			v.refuse("R2 directive")
			// <!DOCTYPE is refused as restricted; any other <!… as
			// malformed.
			v.restricted = bytes.HasPrefix(tok, []byte("DOCTYPE"))
		}
	}
	flush()
	if roots == 0 {
		v.refuse("R3 no root element")
	}

	// Pass 2: RawToken gives the names as written, for the QName and
	// namespace rules.
	rd := xml.NewDecoder(bytes.NewReader(in))
	var scopes []map[string]string
	lookup := func(prefix string) (string, bool) {
		if prefix == "xml" {
			return nsXML, true
		}
		for i := len(scopes) - 1; i >= 0; i-- {
			if uri, ok := scopes[i][prefix]; ok {
				return uri, true
			}
		}
		return "", false
	}
	for {
		tok, err := rd.RawToken()
		if err != nil {
			break // pass 1 already reported any error
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			names := []xml.Name{tok.Name}
			scope := map[string]string{}
			seen := map[xml.Name]bool{}
			for _, a := range tok.Attr {
				names = append(names, a.Name)
				if seen[a.Name] {
					v.refuse("R5 duplicate attribute " + a.Name.Space + ":" + a.Name.Local)
				}
				seen[a.Name] = true
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					if a.Value == nsXML || a.Value == nsXMLNS {
						v.refuse("R6 default namespace bound to the xml or xmlns namespace")
					}
					scope[""] = a.Value
				case a.Name.Space == "xmlns":
					switch {
					case a.Name.Local == "xmlns":
						v.refuse("R6 xmlns prefix declared")
					case a.Name.Local == "xml" && a.Value != nsXML:
						v.refuse("R6 xml prefix bound elsewhere")
					case a.Name.Local != "xml" && (a.Value == nsXML || a.Value == nsXMLNS):
						v.refuse("R6 prefix bound to the xml or xmlns namespace")
					case a.Value == "":
						v.refuse("R6 prefix undeclared")
					}
					scope[a.Name.Local] = a.Value
				}
			}
			for _, n := range names {
				if strings.Contains(n.Local, ":") {
					v.refuse("R4 not a QName: " + n.Local)
				}
				// encoding/xml checks the name as a whole; the part after
				// the colon must be an NCName too, so start with a
				// letter or '_' (non-ASCII starts are X1).
				if c := n.Local[0]; n.Space != "" && c < 0x80 && !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
					v.refuse("R4 local part does not start a name: " + n.Local)
				}
			}
			scopes = append(scopes, scope)
			inScope := 0
			for _, sc := range scopes {
				inScope += len(sc)
			}
			if inScope > lim.MaxAttrs {
				v.refuse("R1 too many namespace declarations in scope")
			}
			if tok.Name.Space == "xmlns" {
				v.refuse("R6 xmlns prefix on an element")
			} else if tok.Name.Space != "" {
				if _, ok := lookup(tok.Name.Space); !ok {
					v.refuse("R6 undeclared prefix " + tok.Name.Space)
				}
			}
			expanded := map[xml.Name]bool{}
			for _, a := range tok.Attr {
				if a.Name.Space == "" || a.Name.Space == "xmlns" {
					continue
				}
				uri, ok := lookup(a.Name.Space)
				if !ok {
					v.refuse("R6 undeclared prefix " + a.Name.Space)
					continue
				}
				n := xml.Name{Space: uri, Local: a.Name.Local}
				if expanded[n] {
					v.refuse("R5 duplicate expanded attribute name")
				}
				expanded[n] = true
			}
		case xml.EndElement:
			if len(scopes) > 0 {
				scopes = scopes[:len(scopes)-1]
			}
		}
	}
	return v
}

// xmlChars reports whether in is UTF-8 made only of XML 1.0 Chars.
func xmlChars(in []byte) bool {
	for _, r := range string(in) {
		switch {
		case r == utf8.RuneError:
			// string ranging yields U+FFFD for bad bytes; a real U+FFFD is
			// a Char, so look again.
			if !utf8.Valid(in) {
				return false
			}
		case r == 0x9 || r == 0xA || r == 0xD:
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return false
		}
	}
	return true
}

// lexical makes the checks that need the input as written: R5's white
// space between attributes, X1 and X2.
func lexical(in []byte, v *verdict) {
	for i := 0; i < len(in); i++ {
		if in[i] != '<' {
			continue
		}
		rest := in[i:]
		skip := func(open, close string) bool {
			if !bytes.HasPrefix(rest, []byte(open)) {
				return false
			}
			end := bytes.Index(rest[len(open):], []byte(close))
			if end < 0 {
				i = len(in)
			} else {
				i += len(open) + end + len(close) - 1
			}
			return true
		}
		if skip("<![CDATA[", "]]>") || skip("<!--", "-->") || skip("<?", "?>") {
			continue
		}
		// A tag: walk to its '>' outside quotes.
		var quote byte
		isDecl := false
		for i++; i < len(in); i++ {
			c := in[i]
			switch {
			case quote != 0:
				if c == '\r' && isDecl {
					v.skip = true
				}
				if c == quote {
					quote = 0
					if i+1 < len(in) && !isSpace(in[i+1]) && in[i+1] != '/' && in[i+1] != '>' {
						v.refuse("R5 attributes not separated by white space")
					}
				}
				continue
			case c == '\'' || c == '"':
				quote = c
				// The attribute's name: back over white space, '=',
				// white space, then name characters.
				j := i - 1
				for j > 0 && isSpace(in[j]) {
					j--
				}
				if in[j] == '=' {
					j--
				}
				for j > 0 && isSpace(in[j]) {
					j--
				}
				end := j + 1
				for j > 0 && !isSpace(in[j]) && in[j] != '<' && in[j] != '\'' && in[j] != '"' {
					j--
				}
				name := in[j+1 : end]
				isDecl = string(name) == "xmlns" || bytes.HasPrefix(name, []byte("xmlns:"))
			case c >= 0x80:
				if v.excluded == "" {
					v.excluded = "X1 non-ASCII name"
				}
			}
			if c == '>' && quote == 0 {
				break
			}
		}
	}
}

// xmlFuzzSeeds returns the parser tests' inputs and every stanza of the
// scenario files: the local ones and, when present, the public cases.
func xmlFuzzSeeds(tb testing.TB) []string {
	seeds := []string{
		`<presence/>`, " \n<presence/>\n ", `<presence xmlns='jabber:client' id="a'b"><show>away</show></presence>`,
		`<c:presence xmlns:c='jabber:client'><c:show>dnd</c:show></c:presence>`,
		`<presence><status>a &lt; b &amp; c &#233; &#x1F600;</status></presence>`,
		`<presence><status><![CDATA[<not markup> & ]]></status></presence>`,
		`<presence xml:lang='en'><x xmlns='urn:a' xmlns:b='urn:b' b:attr='1'><b:y/></x></presence>`,
		"<presence>a\r\nb&#13;<![CDATA[c\rd]]><x/>e</presence>", "<presence id='a\r\nb&#13;\tc'/>",
		`<presence a='1'b='2'/>`, `<presence a='1' a='2'/>`, `<p:presence/>`, `<presence xmlns:p=''/>`,
		`<presence><!-- c --></presence>`, `<?xml version='1.0'?><presence/>`, `<!DOCTYPE p><presence/>`,
		`<presence/><presence/>`, `<presence/>x`, "\ufeff<presence/>", `<:a/>`, `<a:/>`, `<a><b><c><d><e><f><g/></f></e></d></c></b></a>`,
		`<a xmlns:x='u' xmlns:y='u' x:a='1' y:a='2'/>`, `<xmlns:a/>`, `<a xmlns='http://www.w3.org/XML/1998/namespace'/>`,
		`<iq type='get' id='l1'><query xmlns='jabber:iq:last'/></iq>`, `<iq xmlns='jabber:server' type='get' id='l1' to='a@b'> <q:query xmlns:q='jabber:iq:last'/> </iq>`,
		`<iq type='get' id='l1'><query xmlns='jabber:iq:version'/></iq>`, `<iq type='set' id='l1'><query xmlns='jabber:iq:last'/></iq>`,
		`<iq type='get'><query xmlns='jabber:iq:last'/></iq>`, `<iq type='get' id='l1'><query xmlns='jabber:iq:last'/><query xmlns='jabber:iq:last'/></iq>`,
		`<iq type='&#x67;et' id=''><query xmlns='jabber:iq:last' seconds='1'>x</query></iq>`, `<iq type='get' id='l1'>x<query xmlns='jabber:iq:last'/></iq>`,
		`<presence>]]></presence>`, `<presence>&nbsp;</presence>`, `<presence>&#0;</presence>`, `<é/>`, `<a é='1'/>`,
	}
	dirs := []string{"../core/testdata/scenarios", "../core/testdata/conformance", "../../shared/conformance/cases"}
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				tb.Fatal(err)
			}
			for _, line := range strings.Split(string(src), "\n") {
				if i := strings.Index(line, "<"); i >= 0 && !strings.HasPrefix(line, "#") {
					seeds = append(seeds, strings.TrimSuffix(line[i:], "\r"))
				}
			}
		}
	}
	return seeds
}
