package lsjackal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/jackal-xmpp/stravaganza"
	xmlparser "github.com/jackal-xmpp/stravaganza/parser"
	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// WASMEngine is an Engine running lastseen's WebAssembly module on
// bindings/go (wazero): one instance, behind the binding's own mutex plus
// one here that keeps each call's facts and the call together.
//
// The module keeps authorisation facts itself and imports no host function
// to ask (wasm/ABI.md # How authorisation facts reach the guest), so it
// cannot read jackal's storage at the moment of a question as the native
// engine does. Instead of mirroring every roster, each probe or Last
// Activity query carries the facts it needs in the same batch: the
// Authorizer's answers for this prober and this target are set just
// before the event and cleared just after it, so the guest never holds a
// stale fact and roster or block list changes need no event.
//
// Durability is by snapshot: OpenWASM restores the snapshot file, if there
// is one, and applies the restart rule; Shutdown writes a new one. A crash
// loses every change since the last snapshot (until the ABI carries
// journal records). After a trap (wazerohost.ErrTrap: the binding starts
// an empty instance) the engine restores the last snapshot the same way.
type WASMEngine struct {
	mu     sync.Mutex
	e      *wazerohost.Engine
	auth   *Authorizer
	path   string
	logger log.Logger
	evs    []wazerohost.Event // one call's batch, reused under mu
}

var _ Engine = (*WASMEngine)(nil)

// OpenWASM starts the module with cfg, whose Auth must be nil, restores
// the snapshot at path if it exists (then applies the restart rule), and
// answers authorisation questions from auth.
func OpenWASM(ctx context.Context, cfg core.Config, auth *Authorizer, path string, logger log.Logger) (*WASMEngine, error) {
	e, err := wazerohost.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	w := &WASMEngine{e: e, auth: auth, path: path, logger: logger}
	if err := w.restore(); err != nil {
		_ = e.Release(ctx)
		return nil, err
	}
	return w, nil
}

// restore loads the snapshot file, if there is one, and applies the
// restart rule.
func (w *WASMEngine) restore() error {
	snap, err := os.ReadFile(w.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	}
	if err := w.e.Restore(snap); err != nil {
		return fmt.Errorf("restoring %s: %w", w.path, err)
	}
	n := w.e.Restarted()
	level.Info(w.logger).Log("msg", "lastseen wasm snapshot restored", "path", w.path, "bytes", len(snap), "took_offline", n)
	return nil
}

// Client is core.Machine.Client, with the facts of a probe or query.
func (w *WASMEngine) Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error) {
	return w.run(wazerohost.Event{Kind: wazerohost.EventClient, Now: now, JID: session, Stanza: raw}, &session)
}

// Server is core.Machine.Server, with the facts of a probe or query.
func (w *WASMEngine) Server(now clock.Time, raw []byte) ([]core.Output, error) {
	return w.run(wazerohost.Event{Kind: wazerohost.EventServer, Now: now, Stanza: raw}, nil)
}

// Close is core.Machine.Close.
func (w *WASMEngine) Close(now clock.Time, session stanza.JID) ([]core.Output, error) {
	return w.run(wazerohost.Event{Kind: wazerohost.EventClose, Now: now, JID: session}, nil)
}

// Up is core.Machine.Up. A domain has no roster in jackal, so it
// announces to nobody, as on the native engine.
func (w *WASMEngine) Up(now clock.Time, domain stanza.JID) ([]core.Output, error) {
	return w.run(wazerohost.Event{Kind: wazerohost.EventUp, Now: now, JID: domain}, nil)
}

// Down is core.Machine.Down.
func (w *WASMEngine) Down(now clock.Time, domain stanza.JID) ([]core.Output, error) {
	return w.run(wazerohost.Event{Kind: wazerohost.EventDown, Now: now, JID: domain}, nil)
}

// run runs ev between the facts it needs and their removal, in one batch.
// session is the sender of a client event, nil for a server event.
func (w *WASMEngine) run(ev wazerohost.Event, session *stanza.JID) ([]core.Output, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	facts := w.facts(ev.Stanza, session)
	w.evs = append(w.evs[:0], facts...)
	w.evs = append(w.evs, ev)
	for _, f := range facts {
		f.Sub, f.On = core.SubNone, false
		w.evs = append(w.evs, f)
	}
	rs, err := w.e.Batch(w.evs)
	if err != nil {
		if errors.Is(err, wazerohost.ErrTrap) {
			// The binding restarted the instance empty: go back to the last
			// snapshot rather than forget everyone.
			level.Error(w.logger).Log("msg", "lastseen wasm instance trapped; restoring the last snapshot", "err", err)
			if rerr := w.restore(); rerr != nil {
				level.Error(w.logger).Log("msg", "lastseen wasm snapshot not restored; the machine is empty", "err", rerr)
			}
		}
		return nil, err
	}
	for i := range facts {
		// A fact the guest refused: the event ran on wrong facts, so its
		// outputs are not sent.
		if rs[i].Err != nil {
			return nil, fmt.Errorf("lastseen wasm: setting a fact: %w", rs[i].Err)
		}
	}
	r := rs[len(facts)]
	return r.Outputs, r.Err
}

// facts returns the roster and block facts the machine asks about for a
// probe or a Last Activity query in raw (core.Authorizer's questions: does
// the sender block the target, does the target block the sender, the
// target's subscription for the sender), read from jackal's storage now,
// as set events. Other stanzas need none.
func (w *WASMEngine) facts(raw []byte, session *stanza.JID) []wazerohost.Event {
	if raw == nil {
		return nil
	}
	// A plain element: a client's stanza has no from, which a
	// stravaganza.Stanza requires.
	st, err := xmlparser.New(bytes.NewReader(raw), xmlparser.DefaultMode, 0).Parse()
	if err != nil {
		return nil // the machine refuses it with the right error
	}
	switch typ := st.Attribute(stravaganza.Type); st.Name() {
	case "presence":
		if typ != stravaganza.ProbeType {
			return nil
		}
	case "iq":
		if typ != stravaganza.GetType {
			return nil
		}
	default:
		return nil
	}
	var sender stanza.JID
	if session != nil {
		sender = *session
	} else if sender, err = stanza.Parse(st.Attribute(stravaganza.From)); err != nil {
		return nil
	}
	to := st.Attribute(stravaganza.To)
	if to == "" {
		return nil // the sender's own account: no facts asked
	}
	target, err := stanza.Parse(to)
	if err != nil {
		return nil
	}
	owner, user := target.Bare(), sender.Bare()
	var evs []wazerohost.Event
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

// Shutdown writes a snapshot of the machine to the snapshot file (a
// temporary file, fsynced, renamed over it) and releases the instance.
func (w *WASMEngine) Shutdown() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	snap, err := w.e.SnapshotErr()
	if err == nil {
		err = writeFileSync(w.path, snap)
	}
	return errors.Join(err, w.e.Release(context.Background()))
}

func writeFileSync(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
