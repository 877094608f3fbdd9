// Package scenario runs conformance scenarios: plain-text scripts that drive
// one presence machine, as the server hosting it would, and state exactly
// which stanzas it must emit. It implements version 1 of the format
// described in spec/SCENARIOS.md at the repository root.
//
// The runner is engine-agnostic: the native Go core, the WASM module under
// wazero and the WASM module under Node.js each implement [Engine], and the
// same files must pass on all three.
//
// # The format
//
// A scenario file holds one directive per line; blank lines and lines
// starting with # are ignored. Words are separated by single spaces, and an
// XML part, always on one line, runs to the end of the line.
//
//	serve DOMAIN...             domains hosted by the machine; before anything else
//	at DATETIME                 set the clock (XEP-0082); it never goes back and
//	                            starts at 2000-01-01T00:00:00Z
//	roster OWNER CONTACT SUB    a roster item; SUB is none, to, from or both
//	block OWNER JID             OWNER blocks JID (XEP-0191)
//	hide OWNER                  OWNER opts out of last-seen
//	limit N DURATION            client probes: N per session, refilled at N per DURATION
//	client FULLJID XML          a stanza from a local, authenticated session (presence, or a XEP-0012 query)
//	server XML                  a stanza from another server or a local component (the same)
//	close FULLJID               a session ended without unavailable presence
//	up JID                      a hosted domain or component came online
//	down JID                    a hosted component went offline
//	expect XML                  a stanza the last input line must emit
//	expect nothing              the last input line emits nothing
//	expect error                the last input line is rejected
//
// The roster, block, hide and limit lines are facts handed to the engine.
// The client, server, close, up and down lines are inputs: the stanzas an
// input emits are compared, as a multiset, with the expect lines that follow
// it up to the next input line. Every output must be expected and every
// expectation met, so an input followed by no expect line must emit nothing.
// Under expect error the engine must report an error, emit nothing, and
// leave its [Engine.State] byte for byte as it was; on any other input an
// engine error is a failure.
//
// Two stanzas are compared as trees, as [Equal] describes: names by
// namespace and local name (jabber:client, jabber:server and no namespace
// being one for the stanza and its content), attributes as a set, the
// stanza's id only when the expectation has one, delay stamps as instants,
// children in order, and text exactly except white space between elements.
//
// # Running
//
// [Parse] reads a file into a [Script], reporting mistakes in the script as
// a [*SyntaxError] naming file and line. [Script.Run] runs it on a fresh
// engine from a [Factory] and returns a [Result] listing each [Failure].
// [RunFiles] does both for a list of files and prints a report ending with
// the line "N passed, N failed".
package scenario
