package stanza

import (
	"github.com/lastseen-xmpp/lastseen/clock"
)

// Delay is an XEP-0203 delayed-delivery stamp: who stamped a stanza and
// when. lastseen adds one to every probe reply that reveals when a presence
// last changed.
type Delay struct {
	From  JID        // the entity whose presence it is (XEP-0318 §3.1)
	Stamp clock.Time // when that presence last changed
}

// AppendDelay appends <delay xmlns='urn:xmpp:delay' from='FROM'
// stamp='STAMP'/> to dst, from being a normalised JID and the stamp an
// XEP-0082 DateTime in UTC. It does not allocate when dst has room.
func AppendDelay[S ~string | ~[]byte](dst []byte, from S, stamp clock.Time) []byte {
	dst = append(dst, "<delay xmlns='urn:xmpp:delay'"...)
	dst = AppendAttr(dst, "from", from)
	dst = append(dst, " stamp='"...)
	dst = stamp.AppendFormat(dst)
	return append(dst, "'/>"...)
}

// Append appends d as a <delay/> element.
func (d Delay) Append(dst []byte) []byte {
	return AppendDelay(dst, d.From.String(), d.Stamp)
}

// ParseDelay reads the first top-level XEP-0203 <delay/> child of a parsed
// stanza, if any. ok is false when there is none; err reports a delay whose
// from or stamp is invalid.
func ParseDelay(el *Element) (d Delay, ok bool, err error) {
	for i := range el.Children {
		n := &el.Children[i]
		if n.Text || string(n.Local) != "delay" || string(n.Space) != NSDelay {
			continue
		}
		var p Parser
		child, err := p.Parse(el.Raw[n.Start:n.End])
		if err != nil {
			// The child inherits prefixes from the root; re-parsing it alone
			// can only fail for a prefixed <delay/>, which XEP-0203 never
			// uses. Treat it as absent rather than guessing.
			return Delay{}, false, nil
		}
		if a := child.Attr("from"); a != nil {
			if d.From, err = ParseBytes(a.AppendValue(nil)); err != nil {
				return Delay{}, true, err
			}
		}
		a := child.Attr("stamp")
		if a == nil {
			return Delay{}, true, &clock.ParseError{}
		}
		if d.Stamp, err = clock.Parse(string(a.AppendValue(nil))); err != nil {
			return Delay{}, true, err
		}
		return d, true, nil
	}
	return Delay{}, false, nil
}
