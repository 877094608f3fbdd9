package core

import "github.com/lastseen-xmpp/lastseen/stanza"

// jidCacheSize bounds how many JIDs a jidReader remembers. Probes and
// presence come in bursts from the same few addresses (a contact's server
// probes every contact at login), so a small cache catches most of them;
// when it is full it starts over, so its memory stays bounded (a few tens
// of KiB) whatever a peer sends.
const jidCacheSize = 256

// jidReader turns JID attributes into normalised JIDs. It remembers the
// JIDs it normalised, keyed by their text as written, so that a repeated
// address costs a map lookup instead of RFC 7622 normalisation and a string
// allocation. Normalisation is a pure function of the text, so the cache
// never changes a result; invalid JIDs are not remembered. A jidReader is
// not safe for concurrent use: each Machine, and each of Sharded's parsers,
// has its own.
//
// In front of the map, recent holds the last few addresses read whose text
// has no references, compared byte for byte before anything is hashed: a
// stanza's from often repeats the previous stanza's (a server probing a
// user's contacts at login, a client sending presence), and so does a to.
type jidReader struct {
	dec    []byte // an attribute value with its references decoded
	known  map[string]stanza.JID
	recent [jidRecent]knownJID
	next   uint8 // the recent slot to fill next
}

// jidRecent is how many addresses jidReader.recent holds: a from and a to,
// and the previous stanza's.
const jidRecent = 4

// knownJID is a remembered address: its text as written (shared with the
// map's key) and its JID.
type knownJID struct {
	raw string
	j   stanza.JID
}

func (r *jidReader) jid(a *stanza.Attr) (stanza.JID, error) {
	raw := a.Raw
	// A recent entry's text has no '&', so equal bytes mean equal values
	// with nothing to decode.
	for i := range r.recent {
		if e := &r.recent[i]; len(e.raw) == len(raw) && e.raw == string(raw) && e.raw != "" {
			return e.j, nil
		}
	}
	refs := a.HasRefs()
	if refs {
		r.dec = a.AppendValue(r.dec[:0])
		raw = r.dec
	}
	if j, ok := r.known[string(raw)]; ok {
		// The map does not give its key back; j's text is raw when raw
		// was written normalised, the usual case.
		if !refs && j.String() == string(raw) {
			r.remember(j, j.String())
		}
		return j, nil
	}
	j, err := stanza.ParseBytes(raw)
	if err != nil {
		return j, err
	}
	if r.known == nil {
		r.known = make(map[string]stanza.JID, jidCacheSize)
	} else if len(r.known) >= jidCacheSize {
		clear(r.known)
	}
	key := j.String() // shares the JID's memory when the text was normalised already
	if key != string(raw) {
		key = string(raw)
	}
	r.known[key] = j
	if !refs {
		r.remember(j, key)
	}
	return j, nil
}

// remember puts j, written as raw, in the oldest recent slot.
func (r *jidReader) remember(j stanza.JID, raw string) {
	r.recent[r.next%jidRecent] = knownJID{raw: raw, j: j}
	r.next++
}

// serverJIDs reads and checks a server stanza's addresses. It reads no
// machine state, so Sharded runs it outside any lock with a reader of its
// own.
func (r *jidReader) serverJIDs(p *stanza.Presence) (from, to stanza.JID, err error) {
	if p.From == nil {
		return from, to, bad("server", ErrNoFrom)
	}
	if from, err = r.jid(p.From); err != nil {
		return from, to, bad("server", err)
	}
	if p.To != nil {
		if to, err = r.jid(p.To); err != nil {
			return from, to, bad("server", err)
		}
	}
	if p.Type == stanza.Probe && p.To == nil {
		return from, to, bad("server", ErrNoTo)
	}
	return from, to, nil
}
