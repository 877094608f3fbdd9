package wazerohost

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// The wire format of ../../wasm/ABI.md, version 3.

const abiVersion = 3

// Step statuses.
const (
	statusOK     = 0
	statusDecode = 1
	statusPanic  = 2
	statusLength = 3
)

// Control block word offsets (bytes).
const (
	ctrlVersion = 0
	ctrlInPtr   = 4
	ctrlInCap   = 8
	ctrlOutPtr  = 12
	ctrlOutCap  = 16
	ctrlOutLen  = 20
	ctrlResults = 24
	ctrlSize    = 32
)

// Op codes.
const (
	opConfig    = 1
	opClient    = 2
	opServer    = 3
	opClose     = 4
	opUp        = 5
	opDown      = 6
	opRoster    = 7
	opBlock     = 8
	opHide      = 9
	opLimit     = 10
	opState     = 11
	opSnapshot  = 12
	opRestore   = 13
	opRestarted = 14
	opApply     = 15
)

// Result codes.
const (
	codeOK               = 0
	codeBadInput         = 1
	codeMalformed        = 2
	codeRestricted       = 3
	codeTooLarge         = 4
	codeTooComplex       = 5
	codeNotPresence      = 6
	codeUnknownType      = 7
	codeInvalidJID       = 8
	codeNoFrom           = 9
	codeNoTo             = 10
	codeNotLocal         = 11
	codeSession          = 12
	codeNotDomain        = 13
	codeNoFactStore      = 14
	codeConfig           = 15
	codeTooManyEntities  = 16
	codeTooManyResources = 17
	codeCorrupt          = 18
	codeHost             = 19
	codeNoMachine        = 32
	codePanic            = 33
	codeOther            = 34
)

// sentinel maps a result code to the error it stands for; nil for codes
// that have no sentinel of their own.
func sentinel(code byte) error {
	switch code {
	case codeMalformed:
		return stanza.ErrMalformed
	case codeRestricted:
		return stanza.ErrRestricted
	case codeTooLarge:
		return stanza.ErrTooLarge
	case codeTooComplex:
		return stanza.ErrTooComplex
	case codeNotPresence:
		return stanza.ErrNotPresence
	case codeUnknownType:
		return stanza.ErrUnknownType
	case codeInvalidJID:
		return stanza.ErrInvalidJID
	case codeNoFrom:
		return core.ErrNoFrom
	case codeNoTo:
		return core.ErrNoTo
	case codeNotLocal:
		return core.ErrNotLocal
	case codeSession:
		return core.ErrSession
	case codeNotDomain:
		return core.ErrNotDomain
	case codeNoFactStore:
		return core.ErrNoFactStore
	case codeConfig:
		return core.ErrConfig
	case codeTooManyEntities:
		return core.ErrTooManyEntities
	case codeTooManyResources:
		return core.ErrTooManyResources
	case codeCorrupt:
		return core.ErrCorrupt
	case codeNoMachine:
		return ErrNoMachine
	case codePanic:
		return ErrGuestPanic
	case codeHost:
		return ErrAuthorizer
	}
	return nil
}

// Errors of the host itself. The machine's own errors are core's and
// stanza's: an error the guest reports matches the same sentinels with
// errors.Is as the native core's, and has the same text.
var (
	// ErrTrap means the WebAssembly instance trapped or exited. The engine
	// closed it and started a fresh one with the same Config: everything
	// the machine tracked, and every roster, block and opt-out fact, is
	// gone and must be fed again (with Config.Auth there are none to feed:
	// the fresh instance asks Config.Auth again).
	ErrTrap = errors.New("lastseen wasm: instance trapped")
	// ErrGuestPanic means the guest recovered from a panic in the machine.
	// As with ErrTrap the machine starts again empty.
	ErrGuestPanic = errors.New("lastseen wasm: guest panicked")
	// ErrNoMachine means the guest had no machine; the engine configures
	// one when it starts, so seeing it means the guest was reset under it.
	ErrNoMachine = errors.New("lastseen wasm: no machine configured")
	// ErrABI means the guest and this host disagree about the ABI: a wrong
	// module, or a bug.
	ErrABI = errors.New("lastseen wasm: ABI mismatch")
	// ErrReleased means the engine was released.
	ErrReleased = errors.New("lastseen wasm: engine released")
	// ErrAuthorizer means Config.Auth panicked while the guest asked it a
	// question (ABI version 3, code 19 HOST): the event was refused and
	// emitted nothing. The error wraps the panic's value when it is an
	// error, and the machine goes on; only a client probe's rate-limit
	// token may have been spent.
	ErrAuthorizer = errors.New("lastseen wasm: the Authorizer failed")
)

// guestError is a reason the guest reported, rebuilt so that its text is
// the guest's and errors.Is reaches the sentinel of its code.
type guestError struct {
	msg string
	err error // the sentinel, or nil
}

func (e *guestError) Error() string { return e.msg }
func (e *guestError) Unwrap() error { return e.err }

// hostFailure is a HOST result whose reason the host holds: an import
// answered "failed" (flag bit 1).
type hostFailure struct{ error }

func (e *hostFailure) Unwrap() error { return e.error }

// encoder appends events in the ABI's format.
type encoder struct{ b []byte }

func (w *encoder) u8(v byte)    { w.b = append(w.b, v) }
func (w *encoder) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *encoder) i64(v int64)  { w.b = binary.LittleEndian.AppendUint64(w.b, uint64(v)) }
func (w *encoder) bytes(b []byte) {
	w.u32(uint32(len(b)))
	w.b = append(w.b, b...)
}
func (w *encoder) str(s string) {
	w.u32(uint32(len(s)))
	w.b = append(w.b, s...)
}

func (w *encoder) config(cfg *core.Config) {
	w.u8(opConfig)
	w.u32(uint32(len(cfg.Served)))
	for _, s := range cfg.Served {
		w.str(s)
	}
	opts := [...]int64{
		int64(cfg.ProbeLimit.Burst), int64(cfg.ProbeLimit.Per),
		int64(cfg.MaxEntities), int64(cfg.MaxResources),
		int64(cfg.Limits.MaxBytes), int64(cfg.Limits.MaxDepth), int64(cfg.Limits.MaxAttrs),
		int64(flag(cfg.Journal)),
		int64(flag(cfg.Auth != nil)), // facts from the host (version 3)
	}
	w.u32(uint32(len(opts)))
	for _, o := range opts {
		w.i64(o)
	}
}

func flag(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// event appends ev; it reports false for an unknown kind.
func (w *encoder) event(ev *Event) bool {
	switch ev.Kind {
	case EventClient:
		w.u8(opClient)
		w.i64(int64(ev.Now))
		w.str(ev.JID.String())
		w.bytes(ev.Stanza)
	case EventServer:
		w.u8(opServer)
		w.i64(int64(ev.Now))
		w.bytes(ev.Stanza)
	case EventClose, EventUp, EventDown:
		op := byte(opClose)
		if ev.Kind == EventUp {
			op = opUp
		} else if ev.Kind == EventDown {
			op = opDown
		}
		w.u8(op)
		w.i64(int64(ev.Now))
		w.str(ev.JID.String())
	case EventRoster:
		w.u8(opRoster)
		w.str(ev.JID.String())
		w.str(ev.Other.String())
		w.u8(byte(ev.Sub))
	case EventBlock:
		w.u8(opBlock)
		w.str(ev.JID.String())
		w.str(ev.Other.String())
		w.u8(flag(ev.On))
	case EventHide:
		w.u8(opHide)
		w.str(ev.JID.String())
		w.u8(flag(ev.On))
	case EventLimit:
		w.u8(opLimit)
		w.i64(int64(ev.Now))
		w.i64(int64(ev.Limit.Burst))
		w.i64(int64(ev.Limit.Per))
	case EventState:
		w.u8(opState)
	case EventSnapshot:
		w.u8(opSnapshot)
	case EventRestore:
		w.u8(opRestore)
		w.bytes(ev.Stanza)
	case EventRestarted:
		w.u8(opRestarted)
	case EventApply:
		w.u8(opApply)
		w.bytes(ev.Stanza)
	default:
		return false
	}
	return true
}

// decoder reads result records.
type decoder struct {
	b   []byte
	i   int
	bad bool
}

func (d *decoder) u8() byte {
	if d.i+1 > len(d.b) {
		d.bad = true
		return 0
	}
	d.i++
	return d.b[d.i-1]
}

func (d *decoder) u32() uint32 {
	if d.i+4 > len(d.b) {
		d.bad = true
		return 0
	}
	d.i += 4
	return binary.LittleEndian.Uint32(d.b[d.i-4:])
}

func (d *decoder) i64() int64 {
	if d.i+8 > len(d.b) {
		d.bad = true
		return 0
	}
	d.i += 8
	return int64(binary.LittleEndian.Uint64(d.b[d.i-8:]))
}

func (d *decoder) bytes() []byte {
	n := d.u32()
	if d.bad || uint64(n) > uint64(len(d.b)-d.i) {
		d.bad = true
		return nil
	}
	d.i += int(n)
	return d.b[d.i-int(n) : d.i : d.i]
}

// result decodes one result record. Outputs and data alias d.b.
func (d *decoder) result(outs []core.Output) (_ []core.Output, data []byte, err error) {
	code := d.u8()
	if code == codeOK {
		n := d.u32()
		if d.bad || uint64(n) > uint64(len(d.b)-d.i)/9 {
			d.bad = true
			return outs, nil, nil
		}
		for range n {
			k := core.Kind(d.u8())
			to := d.bytes()
			st := d.bytes()
			outs = append(outs, core.Output{Kind: k, To: to, Stanza: st})
		}
		return outs, d.bytes(), nil
	}
	flags := d.u8()
	event := string(d.bytes())
	msg := string(d.bytes())
	var reason error
	switch d.u8() {
	case 1: // syntax
		off := d.i64()
		smsg := string(d.bytes())
		if s := sentinel(code); s != nil {
			reason = &stanza.SyntaxError{Offset: int(off), Msg: smsg, Err: s}
		}
	case 2: // JID
		in, part, why := string(d.bytes()), string(d.bytes()), string(d.bytes())
		reason = &stanza.JIDError{Input: in, Part: part, Reason: why}
	}
	if reason == nil || reason.Error() != msg {
		reason = &guestError{msg: msg, err: sentinel(code)}
	}
	if flags&1 != 0 {
		return outs, nil, &core.InputError{Event: event, Err: reason}
	}
	if code == codeHost && flags&2 != 0 {
		return outs, nil, &hostFailure{reason}
	}
	return outs, nil, reason
}

// statusError describes a step status other than OK.
func statusError(status uint32) error {
	switch status {
	case statusDecode:
		return fmt.Errorf("%w: the guest could not decode an event", ErrABI)
	case statusLength:
		return fmt.Errorf("%w: input length out of range", ErrABI)
	}
	return fmt.Errorf("%w: unknown step status %d", ErrABI, status)
}

// EventKind says which machine method an Event stands for.
type EventKind uint8

// Event kinds, one per core.Machine input method.
const (
	EventClient    EventKind = iota + 1 // Machine.Client(Now, JID, Stanza)
	EventServer                         // Machine.Server(Now, Stanza)
	EventClose                          // Machine.Close(Now, JID)
	EventUp                             // Machine.Up(Now, JID)
	EventDown                           // Machine.Down(Now, JID)
	EventRoster                         // Machine.SetRoster(JID, Other, Sub)
	EventBlock                          // Machine.SetBlock(JID, Other, On)
	EventHide                           // Machine.SetHidden(JID, On)
	EventLimit                          // Machine.SetProbeLimit(Now, Limit)
	EventState                          // Machine.AppendState: Result.State
	EventSnapshot                       // Machine.Snapshot: Result.State
	EventRestore                        // Machine.Restore(Stanza): the snapshot travels in Stanza
	EventRestarted                      // Machine.Restarted: Result.State is the count, a little-endian u32
	EventApply                          // Machine.ApplyRecord(Stanza): the record travels in Stanza
)

// journals reports whether events of kind k carry journal records in their
// results when the machine journals (ABI.md section 5, "Journal").
func (k EventKind) journals() bool {
	return k >= EventClient && k <= EventDown
}

// splitRecords decodes the journal records a result's data carries: u32 n,
// then n str records. The records alias data.
func splitRecords(data []byte) ([][]byte, error) {
	if len(data) == 0 {
		return nil, nil
	}
	d := decoder{b: data}
	n := d.u32()
	if d.bad || uint64(n) > uint64(len(data))/4 {
		return nil, fmt.Errorf("%w: malformed journal records", ErrABI)
	}
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = d.bytes()
	}
	if d.bad || d.i != len(data) {
		return nil, fmt.Errorf("%w: malformed journal records", ErrABI)
	}
	return recs, nil
}

// Event is one call of a core.Machine method, for Engine.Batch.
type Event struct {
	Kind   EventKind
	Now    clock.Time        // client, server, close, up, down, limit
	JID    stanza.JID        // the session (client, close), the domain (up, down) or the owner (roster, block, hide)
	Other  stanza.JID        // the contact (roster) or the blocked JID (block)
	Stanza []byte            // client, server
	Sub    core.Subscription // roster
	On     bool              // block: blocked; hide: hidden
	Limit  core.RateLimit    // limit
}

// Result is what one Event gave: the Machine method's outputs and error,
// the bytes EventState, EventSnapshot and EventRestarted return, and, when
// Config.Journal is set, the journal records of a client, server, close, up
// or down event (core.Machine.Records).
type Result struct {
	Outputs []core.Output
	State   []byte
	Records [][]byte
	Err     error
}
