// Package stanza reads and writes the parts of XMPP presence stanzas (and
// XEP-0012 Last Activity queries) that lastseen needs, without building a DOM:
//
//   - a strict parser for the restricted XML of RFC 6120 §11 (no DTD, no
//     comments, no processing instructions, only the five predefined entities
//     and character references, one root element, UTF-8, namespace
//     well-formedness per Namespaces in XML 1.0), with limits on size, depth
//     and attributes; it returns a view of the root (attributes, top-level
//     children) as offsets into the input and allocates nothing once warm;
//   - a presence view on top (RFC 6121 §4.7: from, to, id, type), and an iq
//     view (RFC 6120 §8.2.3) that recognises a XEP-0012 Last Activity query
//     without allocating (IQ.CheckLastActivity);
//   - JIDs per RFC 7622, normalised once at ingestion (PRECIS
//     UsernameCaseMapped localpart, IDNA2008 domainpart, OpaqueString
//     resourcepart), with an ASCII fast path proven equal to the slow path;
//   - XEP-0203 <delay/> elements with XEP-0082 date-times, always written in
//     UTC with a Z.
//
// Replies are built by splicing bytes of the input (its id, kept attributes
// and children) between a new start tag and a delay, never by
// re-serialising a tree, so what a client sent is what a prober gets.
package stanza
