// Package wazerohost runs lastseen's WebAssembly module on wazero, behind
// the same Go API as core.Machine: the same Config, clock.Time, stanza.JID,
// core.Output and errors, byte for byte the same outputs and state.
//
// It exists to prove and exercise the module that non-Go hosts load
// (../../wasm/ABI.md): a Go server should use core directly.
//
//	m, err := wazerohost.New(ctx, core.Config{Served: []string{"montague.com"}})
//	...
//	out, err := m.Server(now, probe)
//
// Every Engine runs its own module instance; the compiled module is shared
// by all engines of a Runtime. An Engine is safe for concurrent use (one
// mutex), and unlike core.Machine the outputs it returns are the caller's
// to keep. If the instance traps, the Engine closes it, starts a fresh one
// with the same Config and returns an error matching ErrTrap: the host
// never crashes, but the machine restarts empty.
package wazerohost

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"github.com/lastseen-xmpp/lastseen/wasm"
)

// RuntimeConfig tunes a Runtime. The zero value is ready to use.
type RuntimeConfig struct {
	// CacheDir, when set, keeps compiled code in this directory, so that
	// the next process skips compiling the module (a few seconds). Empty
	// means an in-memory cache shared by every Runtime of this process.
	CacheDir string
	// MemoryLimitPages caps each instance's linear memory, in 64 KiB
	// pages; an instance that needs more traps (ErrTrap). Zero means the
	// wasm32 maximum, 4 GiB.
	MemoryLimitPages uint32
	// Module is the WebAssembly module to run; nil means wasm.Module.
	Module []byte
}

// Runtime is a wazero runtime with lastseen's module compiled in it.
type Runtime struct {
	r        wazero.Runtime
	compiled wazero.CompiledModule
}

var (
	memCache     = wazero.NewCompilationCache()
	defaultOnce  sync.Once
	defaultRT    *Runtime
	defaultRTErr error
)

// NewRuntime compiles the module with wazero's optimising compiler (the
// interpreter is far slower) and prepares WASI.
func NewRuntime(ctx context.Context, rc RuntimeConfig) (*Runtime, error) {
	cache := memCache
	if rc.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(rc.CacheDir)
		if err != nil {
			return nil, err
		}
		cache = c
	}
	cfg := wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache)
	if rc.MemoryLimitPages > 0 {
		cfg = cfg.WithMemoryLimitPages(rc.MemoryLimitPages)
	}
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	if err := instantiateHostImports(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	mod := rc.Module
	if mod == nil {
		mod = wasm.Module
	}
	compiled, err := r.CompileModule(ctx, mod)
	if err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("lastseen wasm: compiling the module: %w", err)
	}
	return &Runtime{r: r, compiled: compiled}, nil
}

// Close closes the runtime and every engine made from it.
func (rt *Runtime) Close(ctx context.Context) error { return rt.r.Close(ctx) }

// New returns an Engine for cfg on the process-wide default Runtime, which
// is made (and the module compiled) at the first call.
func New(ctx context.Context, cfg core.Config) (*Engine, error) {
	defaultOnce.Do(func() { defaultRT, defaultRTErr = NewRuntime(context.Background(), RuntimeConfig{}) })
	if defaultRTErr != nil {
		return nil, defaultRTErr
	}
	return defaultRT.New(ctx, cfg)
}

// Engine is one lastseen machine in its own WebAssembly instance. Its
// methods mirror core.Machine's.
type Engine struct {
	rt     *Runtime
	cfg    core.Config
	served map[string]struct{}

	mu       sync.Mutex
	ctx      context.Context
	mod      api.Module
	mem      api.Memory
	step     api.Function
	reserve  api.Function
	ctrl     uint32
	stack    [1]uint64
	enc      encoder
	limit    core.RateLimit
	records  [][]byte // of the last client, server, close, up or down call
	err      error    // set when the engine cannot run any more
	starting bool     // configuring a fresh instance: a trap now is final

	// Facts from the host (Config.Auth set): what the imports need.
	hostErrs []error               // Authorizer failures of the running step, in order
	jids     map[string]stanza.JID // parsed import arguments
	subs     []byte                // the subscriber list being written
}

// New returns an Engine for cfg.
//
// With cfg.Auth nil the guest keeps the roster, blocking and opt-out facts
// itself: they arrive as events (SetRoster, SetBlock, SetHidden), as with
// core's default MemoryAuth. With cfg.Auth set the facts are the host's
// (ABI version 3, "Facts from the host"): the guest asks cfg.Auth when the
// machine needs a fact, exactly as core.Machine asks its Authorizer, and
// SetRoster, SetBlock and SetHidden are refused with core.ErrNoFactStore.
// cfg.Auth is then called with the Engine's mutex held, from inside the
// guest: it must not call the Engine (it would deadlock), and if it
// panics the event is refused with an error matching ErrAuthorizer. Up and
// Down need it to be a core.SubscriberLister, as core.Machine does.
func (rt *Runtime) New(ctx context.Context, cfg core.Config) (*Engine, error) {
	cfg.Served = append([]string(nil), cfg.Served...)
	e := &Engine{rt: rt, cfg: cfg, served: make(map[string]struct{}), jids: make(map[string]stanza.JID)}
	// The imports find the Engine through the context of the call.
	e.ctx = context.WithValue(context.WithoutCancel(ctx), engineKey{}, e)
	if err := e.start(); err != nil {
		return nil, err
	}
	for _, d := range cfg.Served {
		if j, err := stanza.Parse(d); err == nil {
			e.served[j.String()] = struct{}{}
		}
	}
	e.limit = cfg.ProbeLimit
	if e.limit == (core.RateLimit{}) {
		e.limit = core.DefaultRateLimit
	}
	return e, nil
}

// start instantiates the module and configures its machine.
func (e *Engine) start() error {
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module
		WithStartFunctions("_initialize").
		// The guest's Go runtime paces its garbage collector by the
		// clock; wazero's default fake clock barely moves, and the heap
		// then grows without bound. The machine itself never reads it.
		WithSysNanotime().
		WithSysWalltime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
	mod, err := e.rt.r.InstantiateModule(e.ctx, e.rt.compiled, cfg)
	if err != nil {
		return fmt.Errorf("lastseen wasm: instantiating: %w", err)
	}
	fail := func(err error) error {
		mod.Close(e.ctx)
		return err
	}
	version := mod.ExportedFunction("lastseen_abi_version")
	ctrlFn := mod.ExportedFunction("lastseen_ctrl")
	e.step = mod.ExportedFunction("lastseen_step")
	e.reserve = mod.ExportedFunction("lastseen_reserve")
	e.mem = mod.Memory()
	if version == nil || ctrlFn == nil || e.step == nil || e.reserve == nil || e.mem == nil {
		return fail(fmt.Errorf("%w: a lastseen export is missing", ErrABI))
	}
	res, err := version.Call(e.ctx)
	if err != nil {
		return fail(err)
	}
	if res[0] != abiVersion {
		return fail(fmt.Errorf("%w: module has ABI version %d, this host speaks %d", ErrABI, res[0], abiVersion))
	}
	if res, err = ctrlFn.Call(e.ctx); err != nil {
		return fail(err)
	}
	e.mod, e.ctrl = mod, uint32(res[0])
	e.enc.b = e.enc.b[:0]
	e.enc.config(&e.cfg)
	e.starting = true
	rs, err := e.run(nil)
	e.starting = false
	if err == nil {
		err = rs[0].Err
	}
	if err != nil {
		e.mod = nil
		return fail(err)
	}
	return nil
}

// word reads a control block word.
func (e *Engine) word(off uint32) uint32 {
	v, _ := e.mem.ReadUint32Le(e.ctrl + off)
	return v
}

// call runs lastseen_step on the n bytes already in the input buffer and
// returns the out region (a view of guest memory) and its result count.
func (e *Engine) call(n int) (out []byte, results int, status uint32, err error) {
	e.stack[0] = uint64(n)
	if err := e.step.CallWithStack(e.ctx, e.stack[:]); err != nil {
		return nil, 0, 0, err
	}
	status = uint32(e.stack[0])
	out, ok := e.mem.Read(e.word(ctrlOutPtr), e.word(ctrlOutLen))
	if !ok {
		return nil, 0, 0, fmt.Errorf("%w: output region out of bounds", ErrABI)
	}
	return out, int(e.word(ctrlResults)), status, nil
}

// run sends the encoded events in e.enc to the guest (they must fit its
// input buffer, growing it if needed) and decodes the results into rs,
// copying outputs into host memory. A trap restarts the instance.
func (e *Engine) run(rs []Result) ([]Result, error) {
	in := e.enc.b
	if uint32(len(in)) > e.word(ctrlInCap) {
		e.stack[0] = uint64(len(in))
		if err := e.reserve.CallWithStack(e.ctx, e.stack[:]); err != nil {
			return rs, e.trapped(err)
		}
		if e.stack[0] != statusOK {
			return rs, statusError(uint32(e.stack[0]))
		}
	}
	if !e.mem.Write(e.word(ctrlInPtr), in) {
		return rs, fmt.Errorf("%w: input buffer out of bounds", ErrABI)
	}
	e.hostErrs = e.hostErrs[:0]
	out, n, status, err := e.call(len(in))
	if err != nil {
		return rs, e.trapped(err)
	}
	// One copy of the whole region, so that the results outlive the
	// next call.
	d := decoder{b: append([]byte(nil), out...)}
	for range n {
		outs, data, rerr := d.result(nil)
		if d.bad {
			return rs, fmt.Errorf("%w: malformed result record", ErrABI)
		}
		if _, failed := rerr.(*hostFailure); failed && len(e.hostErrs) > 0 {
			// The guest names the import; the host has the reason.
			rerr, e.hostErrs = e.hostErrs[0], e.hostErrs[1:]
		}
		rs = append(rs, Result{Outputs: outs, State: data, Err: rerr})
	}
	switch status {
	case statusOK:
		return rs, nil
	case statusPanic:
		// The guest dropped its machine: configure a fresh one.
		cause := errors.New("the guest panicked")
		if len(rs) > 0 && rs[len(rs)-1].Err != nil {
			cause = rs[len(rs)-1].Err
		}
		return rs, e.restart(cause, false)
	}
	return rs, statusError(status)
}

// trapped handles an instance that trapped or exited: it is closed and a
// fresh one started.
func (e *Engine) trapped(cause error) error {
	// wazero appends the wasm stack trace: keep the first line.
	msg, _, _ := strings.Cut(cause.Error(), "\n")
	return e.restart(errors.New(msg), true)
}

func (e *Engine) restart(cause error, trap bool) error {
	sentinel := ErrGuestPanic
	if trap {
		sentinel = ErrTrap
	}
	if e.starting {
		return fmt.Errorf("%w: %v", sentinel, cause)
	}
	if e.mod != nil {
		e.mod.Close(e.ctx)
		e.mod = nil
	}
	if err := e.start(); err != nil {
		e.err = fmt.Errorf("%w (%v); restarting failed: %v", sentinel, cause, err)
		return e.err
	}
	e.limit = e.cfg.ProbeLimit
	if e.limit == (core.RateLimit{}) {
		e.limit = core.DefaultRateLimit
	}
	return fmt.Errorf("%w: %v; the machine restarted empty", sentinel, cause)
}

// Batch runs events in order, as many per guest call as fit its input
// buffer, and returns one Result per event. Each event's error is in its
// Result; the error Batch returns means the run stopped (a trap: see
// ErrTrap), and the results then cover the events that ran.
func (e *Engine) Batch(events []Event) ([]Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mod == nil {
		return nil, e.dead()
	}
	rs := make([]Result, 0, len(events))
	inCap := int(e.word(ctrlInCap))
	for i := 0; i < len(events); {
		e.enc.b = e.enc.b[:0]
		j := i
		for ; j < len(events); j++ {
			mark := len(e.enc.b)
			if !e.enc.event(&events[j]) {
				return rs, fmt.Errorf("lastseen wasm: event %d has unknown kind %d", j, events[j].Kind)
			}
			if len(e.enc.b) > inCap && j > i {
				e.enc.b = e.enc.b[:mark] // next call
				break
			}
		}
		var err error
		if rs, err = e.run(rs); err != nil {
			return rs, err
		}
		for k := i; k < j; k++ {
			if err := e.settle(&events[k], &rs[k]); err != nil {
				return rs, err
			}
		}
		i = j
	}
	return rs, nil
}

func (e *Engine) dead() error {
	if e.err != nil {
		return e.err
	}
	return ErrReleased
}

// one runs a single encoded event.
func (e *Engine) one(ev *Event) Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Kind.journals() {
		e.records = nil
	}
	if e.mod == nil {
		return Result{Err: e.dead()}
	}
	e.enc.b = e.enc.b[:0]
	e.enc.event(ev)
	var buf [1]Result
	rs, err := e.run(buf[:0])
	if err != nil {
		return Result{Err: err}
	}
	if len(rs) != 1 {
		return Result{Err: fmt.Errorf("%w: %d results for one event", ErrABI, len(rs))}
	}
	if err := e.settle(ev, &rs[0]); err != nil {
		return Result{Err: err}
	}
	if ev.Kind.journals() {
		e.records = rs[0].Records
	}
	return rs[0]
}

// settle finishes the result r of ev: it keeps a new probe limit and moves
// journal records out of the result's data.
func (e *Engine) settle(ev *Event, r *Result) error {
	if r.Err != nil {
		return nil
	}
	if ev.Kind == EventLimit {
		e.limit = ev.Limit
	}
	if ev.Kind.journals() {
		recs, err := splitRecords(r.State)
		if err != nil {
			return err
		}
		r.Records, r.State = recs, nil
	}
	return nil
}

func (e *Engine) input(ev Event) ([]core.Output, error) {
	r := e.one(&ev)
	if r.Err != nil {
		return nil, r.Err
	}
	return r.Outputs, nil
}

// Client is core.Machine.Client.
func (e *Engine) Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error) {
	return e.input(Event{Kind: EventClient, Now: now, JID: session, Stanza: raw})
}

// Server is core.Machine.Server.
func (e *Engine) Server(now clock.Time, raw []byte) ([]core.Output, error) {
	return e.input(Event{Kind: EventServer, Now: now, Stanza: raw})
}

// Close is core.Machine.Close. (Release frees the engine.)
func (e *Engine) Close(now clock.Time, session stanza.JID) ([]core.Output, error) {
	return e.input(Event{Kind: EventClose, Now: now, JID: session})
}

// Up is core.Machine.Up: the outputs are the domain's presence for each
// of its subscribers (RULES S3, ABI version 2).
func (e *Engine) Up(now clock.Time, jid stanza.JID) ([]core.Output, error) {
	return e.input(Event{Kind: EventUp, Now: now, JID: jid})
}

// Down is core.Machine.Down, announced as Up is.
func (e *Engine) Down(now clock.Time, jid stanza.JID) ([]core.Output, error) {
	return e.input(Event{Kind: EventDown, Now: now, JID: jid})
}

// SetRoster is core.Machine.SetRoster.
func (e *Engine) SetRoster(owner, contact stanza.JID, sub core.Subscription) error {
	return e.one(&Event{Kind: EventRoster, JID: owner, Other: contact, Sub: sub}).Err
}

// SetBlock is core.Machine.SetBlock.
func (e *Engine) SetBlock(owner, jid stanza.JID, blocked bool) error {
	return e.one(&Event{Kind: EventBlock, JID: owner, Other: jid, On: blocked}).Err
}

// SetHidden is core.Machine.SetHidden.
func (e *Engine) SetHidden(owner stanza.JID, hidden bool) error {
	return e.one(&Event{Kind: EventHide, JID: owner, On: hidden}).Err
}

// SetProbeLimit is core.Machine.SetProbeLimit.
func (e *Engine) SetProbeLimit(now clock.Time, l core.RateLimit) error {
	return e.one(&Event{Kind: EventLimit, Now: now, Limit: l}).Err
}

// ProbeLimit is core.Machine.ProbeLimit.
func (e *Engine) ProbeLimit() core.RateLimit {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.limit
}

// Serves is core.Machine.Serves.
func (e *Engine) Serves(domain string) bool { _, ok := e.served[domain]; return ok }

// State returns core.Machine.AppendState(nil), or the error that kept the
// guest from answering.
func (e *Engine) State() ([]byte, error) {
	r := e.one(&Event{Kind: EventState})
	return r.State, r.Err
}

// AppendState is core.Machine.AppendState. It has no error to return: if
// the guest cannot answer (see State) it returns dst unchanged.
func (e *Engine) AppendState(dst []byte) []byte {
	s, err := e.State()
	if err != nil {
		return dst
	}
	return append(dst, s...)
}

// Snapshot is core.Machine.Snapshot: the durable state, in the format
// every engine reads. If the guest cannot answer it returns dst unchanged;
// SnapshotErr reports why.
func (e *Engine) Snapshot(dst []byte) []byte {
	s, err := e.SnapshotErr()
	if err != nil {
		return dst
	}
	return append(dst, s...)
}

// SnapshotErr returns the durable state, or the error that kept the guest
// from answering.
func (e *Engine) SnapshotErr() ([]byte, error) {
	r := e.one(&Event{Kind: EventSnapshot})
	return r.State, r.Err
}

// Restore is core.Machine.Restore: it loads a snapshot written by any
// engine. A damaged snapshot is refused with core.ErrCorrupt and nothing
// changes.
func (e *Engine) Restore(snapshot []byte) error {
	return e.one(&Event{Kind: EventRestore, Stanza: snapshot}).Err
}

// Restarted is core.Machine.Restarted. It returns -1 if the guest could
// not answer.
func (e *Engine) Restarted() int {
	r := e.one(&Event{Kind: EventRestarted})
	if r.Err != nil || len(r.State) != 4 {
		return -1
	}
	return int(binary.LittleEndian.Uint32(r.State))
}

// ApplyRecord is core.Machine.ApplyRecord: it replays one journal record
// written by any engine. A damaged record is refused with core.ErrCorrupt
// and nothing changes.
func (e *Engine) ApplyRecord(rec []byte) error {
	return e.one(&Event{Kind: EventApply, Stanza: rec}).Err
}

// Records is core.Machine.Records: the journal records of the last Client,
// Server, Close, Up or Down call, when Config.Journal is set (empty after a
// refused call). Unlike the machine's they are the caller's to keep; like
// the machine's they are only meaningful if calls do not overlap.
func (e *Engine) Records() [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.records
}

// Release closes the engine's instance; every later call fails with
// ErrReleased.
func (e *Engine) Release(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mod == nil {
		return nil
	}
	err := e.mod.Close(ctx)
	e.mod = nil
	e.err = nil
	return err
}
