// Package core is the lastseen presence machine: XEP-0318 (Best Practices
// for Client Initiated Presence Probes) on top of RFC 6121 §4.3 (presence
// probes), with XEP-0203 delayed-delivery stamps, XEP-0191 blocking and
// RFC 7622 addresses, and XEP-0012 (Last Activity) answered from the same
// state.
//
// The machine remembers when every local entity last changed its presence
// and answers presence probes, including probes sent by clients, with the
// last known presence and a <delay/> saying when it changed; probes to a
// server domain or component are answered with the time it came online.
// It answers jabber:iq:last queries from that same state, so a probe reply
// and a Last Activity result never contradict each other and a host needs
// no separate last-activity module.
//
// It is a pure state machine in the style of etcd's raft: events in,
// stanzas out. It opens no socket, starts no goroutine, reads no clock and
// touches no file. Time is an argument of every event; authorisation comes
// from the host through the Authorizer interface. Given the same events it
// emits the same bytes, on every engine (native Go, or the WASM module under
// wazero or Node.js).
//
// The behaviour is specified rule by rule in spec/BEHAVIOUR.md at the
// repository root (T1–T5 tracking, P1–P6 probes to bare JIDs, F1 probes to
// full JIDs, C1–C4 client probes, S1–S3 servers and components, L1–L6 Last
// Activity, B1–B2 input and addresses), each rule linked to the scenarios
// that check it; spec/SCENARIOS.md is the scenario language. Where the
// rules are silent, the choices are listed in CHOICES.md beside this file;
// each is covered by a scenario in testdata/scenarios.
//
// The package's examples show the common paths: Example (a probe answered
// with a last-seen stamp), ExampleMachine_Up (a server's uptime),
// ExampleMachine_Client_routedProbe, ExampleInputError (refused input),
// ExampleCloneOutputs (queueing a Machine's outputs), ExampleSharded and
// ExampleSharded_ServerInto (many connections). Read them with their
// output at pkg.go.dev or in example_test.go.
//
// # Usage
//
// What a host (an XMPP server) does, step by step:
//
//  1. Create one machine at start-up: New(Config{Served: []string{"example.com"}})
//     for a single-threaded event loop, or NewSharded(cfg, 0) when many
//     connection goroutines call in at once. Give Config.Auth your own
//     Authorizer backed by your roster and privacy storage (implement
//     SubscriberLister too, which Up and Down need, and ProbeAuthorizer if
//     your storage can answer a probe's three questions in one look-up:
//     the machine then asks once per probe), or leave it nil and feed
//     facts with SetRoster, SetBlock and SetHidden (they go to the
//     built-in MemoryAuth, which implements both).
//  2. When the server itself, or a component it hosts, comes online, call
//     Up(now, domain); when a component goes away, Down(now, component).
//     Both return the domain's presence for each of its subscribers (RULES
//     S3: the JIDs its roster holds with subscription from or both and
//     that it does not block, such as its XEP-0267 server buddies): Reply
//     outputs, one per subscriber, to route like probe replies (step 6).
//     The machine learns the subscribers from its Authorizer, which must
//     therefore implement SubscriberLister (MemoryAuth does); with one that
//     does not, Up and Down return an error matching ErrNoSubscriberLister
//     and change nothing. The presence is what a probe would get at that
//     instant, so a repeated Up announces the first time again.
//  3. For every presence stanza a local client sends, call
//     Client(now, session, raw) with the session's authenticated full JID
//     (the stanza's own from is ignored). Keep routing broadcasts and directed
//     presence as you do today: the machine only watches them.
//  4. For every presence stanza from another server or a local component,
//     after you verified its from (RFC 6120 §8.1.2.2, dialback or SASL
//     EXTERNAL), call Server(now, raw). Call it for probes addressed to your
//     domains and components; other presence may be passed too (it is
//     ignored), so you need not sort it first.
//  5. When a session ends without unavailable presence (connection lost,
//     stream error, stream management timeout), call Close(now, session).
//  6. After each call, send every Output to Output.To, the normalised
//     address. Kind tells what it is: a Reply to a probe or an announcement
//     of Up or Down, a RoutedProbe to route to another server, an
//     ErrorReply for the local session (all presence), an IQReply answering
//     a query (an iq result or error, to a local session or a remote
//     server), or a RoutedQuery to route onwards (an iq get from the
//     session's full JID; queries are step 9).
//     The stanzas carry no xmlns: write them into the stream you route them
//     on. Outputs of a Machine alias its buffers until its next call, which
//     overwrites them: send them first, or queue CloneOutputs(out).
//     Sharded's are copies the caller owns; a connection goroutine that
//     keeps one Outputs and calls ClientInto and ServerInto instead gets
//     them without an allocation per call.
//  7. On an error (it matches ErrBadInput; errors.As gives an *InputError
//     and, below it, a *stanza.SyntaxError or *stanza.JIDError), nothing was
//     emitted and nothing changed: answer the sender as your server does for
//     bad stanzas (for a client, a stanza error or stream error per RFC 6120
//     §4.9 and §8.3).
//  8. Time must come from one clock that does not go backwards (a monotonic
//     reading mapped to UTC); stamps and the rate limiter use it.
//  9. Pass XEP-0012 Last Activity queries too: every iq of type get whose
//     only child is <query xmlns='jabber:iq:last'/>, from a local client
//     (Client: to its own account, another user, a remote JID, or with no
//     to at all) and from other servers or components (Server), when it is
//     addressed to a user's bare JID, one of your served domains or a
//     component you host. Do not pass a query to a full JID: route it to
//     that resource as RFC 6121 §8.5.3 says (the machine refuses it).
//     Queries change nothing and use no probe token. Advertise the feature
//     jabber:iq:last in your disco#info replies for your domains and users
//     (XEP-0012 §6): the machine does not answer service discovery.
//
// The host stays responsible for what the machine cannot see: authenticating
// sessions, verifying the from of server stanzas, routing, and storing
// rosters and block lists. THREATS.md at the repository root is the threat
// model.
//
// To keep presence history across restarts, use package store (an fsynced
// journal plus snapshots: store.Open wraps a Machine, store.OpenSharded a
// Sharded, with one fsync shared by concurrent callers), or persist
// yourself: set Config.Journal, save
// Records after each call before sending its outputs, write Snapshot now
// and then, and on start-up call Restore, ApplyRecord for each record, then
// Restarted.
package core
