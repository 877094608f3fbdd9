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
type jidReader struct {
	dec   []byte // an attribute value with its references decoded
	known map[string]stanza.JID
}

func (r *jidReader) jid(a *stanza.Attr) (stanza.JID, error) {
	raw := a.Raw
	if a.HasRefs() {
		r.dec = a.AppendValue(r.dec[:0])
		raw = r.dec
	}
	if j, ok := r.known[string(raw)]; ok {
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
	return j, nil
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
