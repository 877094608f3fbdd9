package lsjackal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/jackal-xmpp/stravaganza"
	xmlparser "github.com/jackal-xmpp/stravaganza/parser"
	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"github.com/lastseen-xmpp/lastseen/store"
)

// WASMEngine is an Engine running lastseen's WebAssembly module on
// bindings/go (wazero): one instance, behind the binding's own mutex plus
// one here that keeps each call's facts and the call together.
//
// The module keeps authorisation facts itself and imports no host function
// to ask (wasm/ABI.md # How authorisation facts reach the guest), so it
// cannot read jackal's storage at the moment of a question as the native
// engine does. Instead of mirroring every roster, each probe or Last
// Activity query is preceded by the facts it needs: the Authorizer's
// answers for this prober and this target are set just before the event
// and cleared just after it, under the mutex, so the guest never holds a
// stale fact and roster or block list changes need no event.
//
// Durability is package store's, through wazerohost.OpenDurable: every
// call that changes the presence state returns only once its journal
// records are fsynced, so a crash loses nothing a client was answered
// about; opening replays the journal and applies the restart rule. Facts
// are not journaled (they are the host's, and set per call anyway). After
// a trap (wazerohost.ErrTrap: the binding starts an empty instance while
// the directory still holds everything acknowledged) the engine shuts the
// store down and opens it again.
type WASMEngine struct {
	mu     sync.Mutex
	d      *store.Durable
	e      *wazerohost.Engine // d's machine, for the facts
	auth   *Authorizer
	cfg    core.Config
	dir    string
	logger log.Logger
	evs    []wazerohost.Event // one call's facts, reused under mu
}

var _ Engine = (*WASMEngine)(nil)

// OpenWASM starts the module with cfg, whose Auth must be nil, on the
// store in dir (created if needed; its journal replayed and the restart
// rule applied), and answers authorisation questions from auth.
func OpenWASM(ctx context.Context, cfg core.Config, auth *Authorizer, dir string, logger log.Logger) (*WASMEngine, error) {
	w := &WASMEngine{cfg: cfg, dir: dir, logger: logger, auth: auth}
	if err := w.open(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// open opens the store in w.dir on a new instance.
func (w *WASMEngine) open(ctx context.Context) error {
	d, err := wazerohost.OpenDurable(ctx, w.dir, w.cfg, store.Options{})
	if err != nil {
		return fmt.Errorf("lastseen wasm store %s: %w", w.dir, err)
	}
	e, ok := d.Engine().(*wazerohost.Engine)
	if !ok {
		_ = d.Shutdown()
		return fmt.Errorf("lastseen wasm store %s: machine is a %T, not the WebAssembly engine", w.dir, d.Engine())
	}
	w.d, w.e = d, e
	r := d.Recovery()
	level.Info(w.logger).Log("msg", "lastseen wasm store opened", "dir", w.dir, "generation", r.Generation,
		"records", r.Records, "torn_bytes", r.TornBytes, "took_offline", r.TookOffline)
	return nil
}

// close shuts the store down and releases the instance.
func (w *WASMEngine) close() error {
	err := w.d.Shutdown()
	return errors.Join(err, w.e.Release(context.Background()))
}

// Client is core.Machine.Client, with the facts of a probe or query.
func (w *WASMEngine) Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error) {
	return w.run(raw, &session, func(d *store.Durable) ([]core.Output, error) { return d.Client(now, session, raw) })
}

// Server is core.Machine.Server, with the facts of a probe or query.
func (w *WASMEngine) Server(now clock.Time, raw []byte) ([]core.Output, error) {
	return w.run(raw, nil, func(d *store.Durable) ([]core.Output, error) { return d.Server(now, raw) })
}

// Close is core.Machine.Close.
func (w *WASMEngine) Close(now clock.Time, session stanza.JID) ([]core.Output, error) {
	return w.run(nil, nil, func(d *store.Durable) ([]core.Output, error) { return d.Close(now, session) })
}

// Up is core.Machine.Up. A domain has no roster in jackal, so it
// announces to nobody, as on the native engine.
func (w *WASMEngine) Up(now clock.Time, domain stanza.JID) ([]core.Output, error) {
	return w.run(nil, nil, func(d *store.Durable) ([]core.Output, error) { return d.Up(now, domain) })
}

// Down is core.Machine.Down.
func (w *WASMEngine) Down(now clock.Time, domain stanza.JID) ([]core.Output, error) {
	return w.run(nil, nil, func(d *store.Durable) ([]core.Output, error) { return d.Down(now, domain) })
}

// run runs call between the facts the stanza raw needs and their removal.
// session is the sender of a client stanza, nil for a server event.
func (w *WASMEngine) run(raw []byte, session *stanza.JID, call func(*store.Durable) ([]core.Output, error)) ([]core.Output, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.d == nil {
		return nil, errShutDown
	}
	w.evs = w.facts(w.evs[:0], raw, session)
	n := len(w.evs)
	if n > 0 {
		rs, err := w.e.Batch(w.evs)
		if err != nil {
			return nil, w.trapped(err)
		}
		for _, r := range rs {
			// A fact the guest refused: the event would run on wrong
			// facts, so it does not run.
			if r.Err != nil {
				w.clear(n)
				return nil, fmt.Errorf("lastseen wasm: setting a fact: %w", r.Err)
			}
		}
	}
	out, err := call(w.d)
	if errors.Is(err, wazerohost.ErrTrap) {
		return nil, w.trapped(err) // the facts went with the instance
	}
	if n > 0 {
		// Also after a refused event: the facts must not outlive it.
		if cerr := w.clear(n); cerr != nil {
			return nil, errors.Join(err, cerr)
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// clear unsets the first n facts in w.evs.
func (w *WASMEngine) clear(n int) error {
	for i := range w.evs[:n] {
		w.evs[i].Sub, w.evs[i].On = core.SubNone, false
	}
	rs, err := w.e.Batch(w.evs[:n])
	if err != nil {
		return w.trapped(err)
	}
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("lastseen wasm: clearing a fact: %w", r.Err)
		}
	}
	return nil
}

// trapped returns err after, if it is a trap, reopening the store: the
// binding restarted the instance empty, while the directory holds every
// acknowledged change.
func (w *WASMEngine) trapped(err error) error {
	if !errors.Is(err, wazerohost.ErrTrap) {
		return err
	}
	level.Error(w.logger).Log("msg", "lastseen wasm instance trapped; reopening the store", "err", err)
	if cerr := w.close(); cerr != nil {
		level.Error(w.logger).Log("msg", "lastseen wasm store not closed cleanly", "err", cerr)
	}
	w.d, w.e = nil, nil
	if oerr := w.open(context.Background()); oerr != nil {
		level.Error(w.logger).Log("msg", "lastseen wasm store not reopened; every call fails", "err", oerr)
	}
	return err
}

// facts returns the roster and block facts the machine asks about for a
// probe or a Last Activity query in raw (core.Authorizer's questions: does
// the sender block the target, does the target block the sender, the
// target's subscription for the sender), read from jackal's storage now,
// as set events. Other stanzas need none.
func (w *WASMEngine) facts(evs []wazerohost.Event, raw []byte, session *stanza.JID) []wazerohost.Event {
	if raw == nil {
		return evs
	}
	// A plain element: a client's stanza has no from, which a
	// stravaganza.Stanza requires.
	st, err := xmlparser.New(bytes.NewReader(raw), xmlparser.DefaultMode, 0).Parse()
	if err != nil {
		return evs // the machine refuses it with the right error
	}
	switch typ := st.Attribute(stravaganza.Type); st.Name() {
	case "presence":
		if typ != stravaganza.ProbeType {
			return evs
		}
	case "iq":
		if typ != stravaganza.GetType {
			return evs
		}
	default:
		return evs
	}
	var sender stanza.JID
	if session != nil {
		sender = *session
	} else if sender, err = stanza.Parse(st.Attribute(stravaganza.From)); err != nil {
		return evs
	}
	to := st.Attribute(stravaganza.To)
	if to == "" {
		return evs // the sender's own account: no facts asked
	}
	target, err := stanza.Parse(to)
	if err != nil {
		return evs
	}
	owner, user := target.Bare(), sender.Bare()
	if session != nil && w.auth.Blocks(user, owner) { // C4
		evs = append(evs, wazerohost.Event{Kind: wazerohost.EventBlock, JID: user, Other: owner, On: true})
	}
	if !owner.HasLocal() || owner.String() == user.String() {
		return evs
	}
	isBlocked, sub, _ := w.auth.ProbeFacts(owner, sender)
	if isBlocked {
		evs = append(evs, wazerohost.Event{Kind: wazerohost.EventBlock, JID: owner, Other: sender, On: true})
	}
	if sub != core.SubNone {
		evs = append(evs, wazerohost.Event{Kind: wazerohost.EventRoster, JID: owner, Other: user, Sub: sub})
	}
	return evs
}

// errShutDown is returned by every call after Shutdown, or after a trap
// whose store could not be reopened.
var errShutDown = errors.New("lastseen wasm: store closed")

// Shutdown syncs and closes the store and releases the instance.
func (w *WASMEngine) Shutdown() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.d == nil {
		return nil
	}
	err := w.close()
	w.d, w.e = nil, nil
	return err
}
