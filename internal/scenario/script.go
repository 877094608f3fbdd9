package scenario

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
)

// Script is a parsed scenario file, ready to run on any engine.
type Script struct {
	// Name identifies the script in messages, usually the file's path.
	Name string
	// Lines holds the file's directives in order; blank lines and comments
	// are left out.
	Lines []Line
}

// Line is one directive of a scenario file.
type Line struct {
	// Num is the line's 1-based number in the file.
	Num int
	// Text is the line as written, without its line ending.
	Text string
	// Directive is the line's first word: serve, at, roster, block, hide,
	// limit, client, server, close, up, down or expect.
	Directive string
	// Args holds the words after the directive, without the XML part: the
	// domains of serve, the date-time of at, the owner, contact and
	// subscription of roster, the owner and JID of block, the owner of hide,
	// the count and duration of limit, the session of client and close, the
	// JID of up and down, and "nothing" or "error" for those two forms of
	// expect. It is empty for server and for expect with XML.
	Args []string
	// XML is the XML part of client, server and expect lines, as written; it
	// is nil for every other line (including expect nothing and expect
	// error). The XML of an expect line is known to be one well-formed
	// stanza; the XML of client and server lines is passed to the engine
	// unchecked, since scenarios also feed engines bad input.
	XML []byte
	// Time is the instant an at line sets the clock to.
	Time clock.Time
	// N is the number of probes a limit line allows per session.
	N int
	// Per is the period in which a limit line refills N probes.
	Per time.Duration
}

// IsInput reports whether l is an input line (client, server, close, up or
// down): a line the engine answers with stanzas, compared with the expect
// lines that follow it.
func (l *Line) IsInput() bool {
	switch l.Directive {
	case "client", "server", "close", "up", "down":
		return true
	}
	return false
}

// ExpectsNothing reports whether l is an expect nothing line.
func (l *Line) ExpectsNothing() bool {
	return l.Directive == "expect" && len(l.Args) == 1 && l.Args[0] == "nothing"
}

// ExpectsError reports whether l is an expect error line.
func (l *Line) ExpectsError() bool {
	return l.Directive == "expect" && len(l.Args) == 1 && l.Args[0] == "error"
}

// SyntaxError reports a line of a scenario file that breaks spec/SCENARIOS.md, or a
// file whose lines do not fit together (for example time going back). It is
// a fault of the script, not of the engine running it.
type SyntaxError struct {
	// Name is the script's name, usually the file's path.
	Name string
	// Line is the 1-based number of the offending line.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error formats the error as "name:line: message".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Msg)
}

// Parse reads the scenario src, naming it name in messages. It checks
// everything that can be checked without an engine: the directives and
// their arguments, that every expect line follows an input line and holds
// one well-formed stanza (or nothing or error), that expect error and
// expect nothing are not mixed with other expect lines of the same input,
// that serve lines come first, that time never goes back and that there is
// at least one input line. The first
// problem is returned as a *SyntaxError.
func Parse(name string, src []byte) (*Script, error) {
	s := &Script{Name: name}
	var (
		now       = clock.Epoch2000
		started   bool // a directive other than serve has been seen
		input     = -1 // index in s.Lines of the most recent input line
		expects   []int
		lastInput int
	)
	fail := func(num int, format string, args ...any) (*Script, error) {
		return nil, &SyntaxError{Name: name, Line: num, Msg: fmt.Sprintf(format, args...)}
	}
	// checkGroup validates the expect lines of the input line that just
	// ended.
	checkGroup := func() *SyntaxError {
		if len(expects) < 2 {
			return nil
		}
		for _, i := range expects {
			l := &s.Lines[i]
			if l.ExpectsError() {
				return &SyntaxError{Name: name, Line: l.Num, Msg: fmt.Sprintf("expect error must be the only expect line of its input (line %d)", lastInput)}
			}
			if l.ExpectsNothing() {
				return &SyntaxError{Name: name, Line: l.Num, Msg: fmt.Sprintf("expect nothing cannot be mixed with expected stanzas for the same input (line %d)", lastInput)}
			}
		}
		return nil
	}

	for i, text := range strings.Split(string(src), "\n") {
		num := i + 1
		text = strings.TrimSuffix(text, "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		directive, rest, _ := strings.Cut(text, " ")
		l := Line{Num: num, Text: text, Directive: directive}

		// words splits rest into exactly n single-space-separated words
		// (n < 0: at least one).
		words := func(n int, usage string) ([]string, error) {
			if rest == "" {
				return nil, fmt.Errorf("missing arguments; want %s", usage)
			}
			w := strings.Split(rest, " ")
			for _, x := range w {
				if x == "" {
					return nil, fmt.Errorf("words are separated by single spaces; want %s", usage)
				}
			}
			if n >= 0 && len(w) != n {
				return nil, fmt.Errorf("want %s", usage)
			}
			return w, nil
		}
		var err error
		switch directive {
		case "serve":
			if started {
				return fail(num, "serve must come before every other directive")
			}
			if l.Args, err = words(-1, "serve DOMAIN..."); err == nil {
				for _, d := range l.Args {
					if err = checkDomain(d); err != nil {
						break
					}
				}
			}
		case "at":
			if l.Args, err = words(1, "at DATETIME"); err == nil {
				if l.Time, err = clock.Parse(l.Args[0]); err == nil && l.Time < now {
					err = fmt.Errorf("time never goes back: %s is before %s", l.Args[0], now)
				}
				now = max(now, l.Time)
			}
		case "roster":
			if l.Args, err = words(3, "roster OWNER CONTACT SUB"); err == nil {
				if err = checkBare(l.Args[0]); err == nil {
					if err = checkBare(l.Args[1]); err == nil {
						switch l.Args[2] {
						case "none", "to", "from", "both":
						default:
							err = fmt.Errorf("subscription %q is not none, to, from or both", l.Args[2])
						}
					}
				}
			}
		case "block":
			if l.Args, err = words(2, "block OWNER JID"); err == nil {
				if err = checkBare(l.Args[0]); err == nil {
					err = checkJID(l.Args[1])
				}
			}
		case "hide":
			if l.Args, err = words(1, "hide OWNER"); err == nil {
				err = checkBare(l.Args[0])
			}
		case "limit":
			if l.Args, err = words(2, "limit N DURATION"); err == nil {
				if l.N, err = strconv.Atoi(l.Args[0]); err != nil || l.N < 0 {
					err = fmt.Errorf("limit %q is not a non-negative integer", l.Args[0])
				} else if l.Per, err = time.ParseDuration(l.Args[1]); err != nil {
					err = fmt.Errorf("bad duration: %v", err)
				} else if l.Per <= 0 {
					err = fmt.Errorf("duration %s is not positive", l.Args[1])
				}
			}
		case "client":
			session, x, ok := strings.Cut(rest, " ")
			switch {
			case !ok || x == "":
				err = fmt.Errorf("want client FULLJID XML")
			default:
				// The session JID is the engine's to judge: a scenario may
				// check that a bad one is refused (expect error).
				l.Args, l.XML = []string{session}, []byte(x)
			}
		case "server":
			if rest == "" {
				err = fmt.Errorf("want server XML")
			}
			l.XML = []byte(rest)
		case "close":
			l.Args, err = words(1, "close FULLJID")
		case "up", "down":
			l.Args, err = words(1, directive+" JID")
		case "expect":
			switch rest {
			case "":
				err = fmt.Errorf("want expect XML, expect nothing or expect error")
			case "nothing", "error":
				l.Args = []string{rest}
			default:
				l.XML = []byte(rest)
				if _, perr := normalize(l.XML); perr != nil {
					err = fmt.Errorf("expected stanza: %v", perr)
				}
			}
			if err == nil && input < 0 {
				err = fmt.Errorf("expect must follow an input line (client, server, close, up or down)")
			}
		default:
			return fail(num, "unknown directive %q", directive)
		}
		if err != nil {
			return fail(num, "%s: %v", directive, err)
		}
		if directive != "serve" {
			started = true
		}
		if l.IsInput() {
			if e := checkGroup(); e != nil {
				return nil, e
			}
			input, expects, lastInput = len(s.Lines), nil, num
		}
		if directive == "expect" {
			expects = append(expects, len(s.Lines))
		}
		s.Lines = append(s.Lines, l)
	}
	if e := checkGroup(); e != nil {
		return nil, e
	}
	if input < 0 {
		// A script with no input checks nothing, so passing it would say
		// nothing either: an empty or truncated file must not count as a
		// pass.
		return fail(strings.Count(string(src), "\n")+1, "no input line (client, server, close, up or down): the scenario checks nothing")
	}
	return s, nil
}

// checkJID makes sure s looks like a JID: no spaces (impossible here), a
// non-empty domain, and no empty localpart or resource when their
// separators are present. Deeper validation is the engine's business.
func checkJID(s string) error {
	rest, res, hasRes := strings.Cut(s, "/")
	local, domain, hasLocal := strings.Cut(rest, "@")
	if !hasLocal {
		domain, local = local, ""
	}
	if domain == "" || (hasLocal && local == "") || (hasRes && res == "") || strings.Contains(domain, "@") {
		return fmt.Errorf("%q is not a JID", s)
	}
	return nil
}

// checkBare makes sure s is a bare JID (no resource).
func checkBare(s string) error {
	if err := checkJID(s); err != nil {
		return err
	}
	if strings.Contains(s, "/") {
		return fmt.Errorf("%q is not a bare JID", s)
	}
	return nil
}

// checkDomain makes sure s is a domain JID (no localpart, no resource).
func checkDomain(s string) error {
	if err := checkJID(s); err != nil {
		return err
	}
	if strings.ContainsAny(s, "@/") {
		return fmt.Errorf("%q is not a domain JID", s)
	}
	return nil
}

// quote renders a stanza for a report, on one line.
func quote(b []byte) string {
	if bytes.ContainsAny(b, "\r\n") {
		return strconv.Quote(string(b))
	}
	return string(b)
}

// Inputs returns src without its expect lines, comments and blank lines:
// the events alone, as a script. Fuzz targets use the corpus this way as
// seeds, so the mutator starts from every directive the scenarios use.
func Inputs(src []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(line, "expect ") || strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
