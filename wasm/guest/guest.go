// Command guest is lastseen's WebAssembly reactor: core.Machine behind the
// small binary ABI that ../ABI.md describes. Build it with ../build.sh; the
// exports themselves are in exports.go (GOOS=wasip1 only), so that the
// encoding and dispatch here also compile, vet and test natively.
//
// The guest holds one machine. Events arrive in the input buffer as a batch
// and every event gets one result record in the output buffer. Nothing here
// reads a clock: every timed event carries its time.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

func main() {} // a reactor: the host calls _initialize, never _start

// abiVersion is returned by lastseen_abi_version. It changes whenever a
// host written for the previous version could misread the guest.
const abiVersion = 3

// Statuses returned by lastseen_step and lastseen_reserve.
const (
	statusOK     = 0 // every event ran and has a result
	statusDecode = 1 // the event at index n_results is malformed; the ones before it ran
	statusPanic  = 2 // the guest recovered from a panic; see ABI.md
	statusLength = 3 // the length argument is out of range; nothing ran
)

// Event op codes.
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

var opNames = [...]string{"", "config", "client", "server", "close", "up", "down", "roster", "block", "hide", "limit", "state", "snapshot", "restore", "restarted", "apply"}

// Result codes: 0 is success, the others name the error's class. They map
// one to one onto the core and stanza sentinels (ABI.md has the table).
const (
	codeOK               = 0
	codeBadInput         = 1 // bad input of a class this ABI version does not name
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
	codeHost             = 19 // the host failed to answer an import (option 9)
	codeNoMachine        = 32 // an event other than config before the first config
	codePanic            = 33 // the guest panicked handling the event
	codeOther            = 34 // an error of no known class
)

// sentinels is searched in order; the first match names the code.
var sentinels = [...]struct {
	err  error
	code byte
}{
	{stanza.ErrMalformed, codeMalformed},
	{stanza.ErrRestricted, codeRestricted},
	{stanza.ErrTooLarge, codeTooLarge},
	{stanza.ErrTooComplex, codeTooComplex},
	{stanza.ErrNotPresence, codeNotPresence},
	{stanza.ErrUnknownType, codeUnknownType},
	{stanza.ErrInvalidJID, codeInvalidJID},
	{core.ErrNoFrom, codeNoFrom},
	{core.ErrNoTo, codeNoTo},
	{core.ErrNotLocal, codeNotLocal},
	{core.ErrSession, codeSession},
	{core.ErrNotDomain, codeNotDomain},
	{core.ErrNoFactStore, codeNoFactStore},
	{core.ErrConfig, codeConfig},
	{core.ErrTooManyEntities, codeTooManyEntities},
	{core.ErrTooManyResources, codeTooManyResources},
	{core.ErrCorrupt, codeCorrupt},
}

// Error detail kinds, so that a host can rebuild *stanza.SyntaxError and
// *stanza.JIDError with the same text.
const (
	detailNone   = 0
	detailSyntax = 1 // i64 offset, str msg
	detailJID    = 2 // str input, str part, str reason
)

// Buffer sizes. The defaults live in static arrays, so the hot path never
// allocates; lastseen_reserve and an oversized step switch to a heap buffer
// for one step only.
const (
	defaultInCap  = 128 << 10
	defaultOutCap = 256 << 10
	maxInCap      = 1 << 30
	jidCacheMax   = 4096
)

// configOpts is the number of i64 options a config event may carry, in
// this order: probe burst, probe period (ns), max entities, max resources,
// max stanza bytes, max depth, max attributes, journal (non-zero: on),
// facts from the host (non-zero: on; version 3).
const configOpts = 9

// guest is the state behind the exports.
type guest struct {
	m        *core.Machine
	journal  bool   // the machine journals: results of changing events carry records
	in       []byte // input buffer, len == cap
	out      []byte // results of the last step
	nResults int
	state    []byte
	jids     map[string]stanza.JID // parsed JIDs by their input text
	inDef    []byte
	outDef   []byte

	// Facts from the host (option 9): the machine's Authorizer is
	// hostAuth, which asks host.
	host      host
	hostFacts bool
	hostErr   error        // set by hostAuth when the host failed during the current event
	subs      []stanza.JID // the subscribers of the current up or down
	subBuf    []byte       // where the host writes them
}

func newGuest(inDef, outDef []byte) *guest {
	return &guest{in: inDef, out: outDef[:0], inDef: inDef, outDef: outDef[:0], jids: make(map[string]stanza.JID)}
}

// reserve makes the input buffer hold at least n bytes for the next step.
func (g *guest) reserve(n int) int32 {
	if n < 0 || n > maxInCap {
		return statusLength
	}
	if n > len(g.in) {
		g.in = make([]byte, (n+0xffff)&^0xffff)
	}
	return statusOK
}

// step runs the n bytes of events at the start of the input buffer.
func (g *guest) step(n int) (status int32) {
	g.out = g.outDef[:0]
	g.nResults = 0
	if n < 0 || n > len(g.in) {
		return statusLength
	}
	defer func() {
		if len(g.in) > len(g.inDef) {
			g.in = g.inDef // a reserved buffer serves one step
		}
	}()
	d := decoder{b: g.in[:n]}
	for d.i < len(d.b) {
		var ev event
		if !d.event(&ev) {
			return statusDecode
		}
		if !g.run(&ev) {
			g.m = nil // its state may be half changed: start again with config
			return statusPanic
		}
	}
	return statusOK
}

// event is one decoded input event. Its byte slices alias the input
// buffer.
type event struct {
	op     byte
	now    clock.Time
	a, b   []byte // JIDs: session, jid or owner; contact or blocked JID
	stanza []byte
	flag   byte // subscription, or 1 to set and 0 to clear
	nums   [configOpts]int64
	served [][]byte
}

// run applies ev and writes its result, reporting false if it panicked.
func (g *guest) run(ev *event) (ok bool) {
	mark := len(g.out)
	defer func() {
		if p := recover(); p != nil {
			g.out = g.out[:mark]
			g.writeErr(ev.op, &panicError{fmt.Sprint(p)})
			ok = false
		}
	}()
	g.hostErr = nil
	outs, data, err := g.apply(ev)
	if g.hostErr != nil {
		// The machine went on with "blocked and hidden" answers, so its
		// outputs reveal nothing, but they are not the answer: refuse.
		err = g.hostErr
	}
	if err != nil {
		g.writeErr(ev.op, err)
	} else {
		g.writeOK(outs, data)
	}
	return true
}

type panicError struct{ msg string }

func (e *panicError) Error() string { return "lastseen guest panic: " + e.msg }

var errNoMachine = errors.New("no machine: the first event must be config")

func (g *guest) apply(ev *event) ([]core.Output, []byte, error) {
	if ev.op == opConfig {
		return nil, nil, g.config(ev)
	}
	m := g.m
	if m == nil {
		return nil, nil, errNoMachine
	}
	event := opNames[ev.op]
	switch ev.op {
	case opClient, opClose, opUp, opDown:
		j, err := g.jid(ev.a)
		if err != nil {
			return nil, nil, &core.InputError{Event: event, Err: err}
		}
		if g.hostFacts && (ev.op == opUp || ev.op == opDown) {
			if err := g.fetchSubscribers(event, j); err != nil {
				return nil, nil, err
			}
		}
		var outs []core.Output
		switch ev.op {
		case opClient:
			outs, err = m.Client(ev.now, j, ev.stanza)
		case opClose:
			outs, err = m.Close(ev.now, j)
		case opUp:
			outs, err = m.Up(ev.now, j)
		default:
			outs, err = m.Down(ev.now, j)
		}
		return outs, g.records(err), err
	case opServer:
		outs, err := m.Server(ev.now, ev.stanza)
		return outs, g.records(err), err
	case opRoster, opBlock, opHide:
		owner, err := g.jid(ev.a)
		if err != nil {
			return nil, nil, &core.InputError{Event: event, Err: err}
		}
		if ev.op == opHide {
			return nil, nil, m.SetHidden(owner, ev.flag != 0)
		}
		other, err := g.jid(ev.b)
		if err != nil {
			return nil, nil, &core.InputError{Event: event, Err: err}
		}
		if ev.op == opRoster {
			return nil, nil, m.SetRoster(owner, other, core.Subscription(ev.flag))
		}
		return nil, nil, m.SetBlock(owner, other, ev.flag != 0)
	case opLimit:
		return nil, nil, m.SetProbeLimit(ev.now, core.RateLimit{Burst: int(ev.nums[0]), Per: time.Duration(ev.nums[1])})
	case opSnapshot:
		g.state = m.Snapshot(g.state[:0])
		return nil, g.state, nil
	case opRestore:
		return nil, nil, m.Restore(ev.stanza)
	case opApply:
		return nil, nil, m.ApplyRecord(ev.stanza)
	case opRestarted:
		g.state = binary.LittleEndian.AppendUint32(g.state[:0], uint32(m.Restarted()))
		return nil, g.state, nil
	default: // opState
		g.state = m.AppendState(g.state[:0])
		return nil, g.state, nil
	}
}

// records encodes the journal records of the machine's last call as a
// result's data: u32 n, then n str records. It is empty when the machine
// does not journal, when the call was refused (it changed nothing) and
// when it changed nothing durable, so a host that journals writes only
// what it is given.
func (g *guest) records(err error) []byte {
	if !g.journal || err != nil {
		return nil
	}
	recs := g.m.Records()
	if len(recs) == 0 {
		return nil
	}
	g.state = binary.LittleEndian.AppendUint32(g.state[:0], uint32(len(recs)))
	for _, r := range recs {
		g.state = binary.LittleEndian.AppendUint32(g.state, uint32(len(r)))
		g.state = append(g.state, r...)
	}
	return g.state
}

// config replaces the machine with a fresh one; on error the old one stays.
func (g *guest) config(ev *event) error {
	served := make([]string, len(ev.served))
	for i, s := range ev.served {
		served[i] = string(s)
	}
	o := ev.nums
	hostFacts := o[8] != 0
	var auth core.Authorizer
	if hostFacts {
		if g.host == nil {
			return fmt.Errorf("%w: this build of the guest has no host imports", core.ErrConfig)
		}
		auth = hostAuth{g}
	}
	m, err := core.New(core.Config{
		Auth:         auth,
		Served:       served,
		ProbeLimit:   core.RateLimit{Burst: int(o[0]), Per: time.Duration(o[1])},
		MaxEntities:  int(o[2]),
		MaxResources: int(o[3]),
		Limits:       stanza.Limits{MaxBytes: int(o[4]), MaxDepth: int(o[5]), MaxAttrs: int(o[6])},
		Journal:      o[7] != 0,
	})
	if err != nil {
		return err
	}
	g.m, g.journal, g.hostFacts = m, o[7] != 0, hostFacts
	return nil
}

// jid parses a JID argument; empty text is the zero JID, which the machine
// judges itself (a zero session is ErrSession, not ErrInvalidJID). Parsed
// JIDs are cached by their text, so a busy session costs no allocation.
func (g *guest) jid(b []byte) (stanza.JID, error) {
	if len(b) == 0 {
		return stanza.JID{}, nil
	}
	if j, ok := g.jids[string(b)]; ok {
		return j, nil
	}
	j, err := stanza.ParseBytes(b)
	if err != nil {
		return j, err
	}
	if len(g.jids) >= jidCacheMax {
		clear(g.jids)
	}
	g.jids[string(b)] = j
	return j, nil
}

// Result records.

func (g *guest) u8(v byte)    { g.out = append(g.out, v) }
func (g *guest) u32(v uint32) { g.out = binary.LittleEndian.AppendUint32(g.out, v) }
func (g *guest) i64(v int64)  { g.out = binary.LittleEndian.AppendUint64(g.out, uint64(v)) }
func (g *guest) bytes(b []byte) {
	g.u32(uint32(len(b)))
	g.out = append(g.out, b...)
}
func (g *guest) str(s string) {
	g.u32(uint32(len(s)))
	g.out = append(g.out, s...)
}

func (g *guest) writeOK(outs []core.Output, data []byte) {
	g.nResults++
	g.u8(codeOK)
	g.u32(uint32(len(outs)))
	for _, o := range outs {
		g.u8(byte(o.Kind))
		g.bytes(o.To)
		g.bytes(o.Stanza)
	}
	g.bytes(data)
}

func (g *guest) writeErr(op byte, err error) {
	g.nResults++
	var flags byte
	event, reason := opNames[op], err
	var ie *core.InputError
	if errors.As(err, &ie) {
		flags, event, reason = 1, ie.Event, ie.Err
	}
	var he *errHost
	if errors.As(err, &he) && he.failed {
		flags |= 2 // the host failed and holds the reason (version 3)
	}
	g.u8(classify(err))
	g.u8(flags)
	g.str(event)
	g.str(reason.Error())
	var se *stanza.SyntaxError
	var je *stanza.JIDError
	switch {
	case errors.As(reason, &se) && se == reason:
		g.u8(detailSyntax)
		g.i64(int64(se.Offset))
		g.str(se.Msg)
	case errors.As(reason, &je) && je == reason:
		g.u8(detailJID)
		g.str(je.Input)
		g.str(je.Part)
		g.str(je.Reason)
	default:
		g.u8(detailNone)
	}
}

func classify(err error) byte {
	switch {
	case errors.Is(err, errNoMachine):
		return codeNoMachine
	case errors.As(err, new(*panicError)):
		return codePanic
	case errors.As(err, new(*errHost)):
		return codeHost
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	if errors.Is(err, core.ErrBadInput) {
		return codeBadInput
	}
	return codeOther
}

// decoder reads events; any read past the end marks it bad.
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

// event decodes one event into ev, reporting false if it is malformed (the
// decoder then stays where the event began).
func (d *decoder) event(ev *event) bool {
	start := d.i
	ev.op = d.u8()
	switch ev.op {
	case opConfig:
		n := d.u32()
		if d.bad || uint64(n) > uint64(len(d.b)-d.i)/4 {
			d.bad = true
			break
		}
		ev.served = make([][]byte, n)
		for i := range ev.served {
			ev.served[i] = d.bytes()
		}
		k := d.u32()
		if d.bad || k > configOpts {
			d.bad = true
			break
		}
		for i := range ev.nums {
			if uint32(i) < k {
				ev.nums[i] = d.i64()
			}
		}
	case opClient:
		ev.now = clock.Time(d.i64())
		ev.a = d.bytes()
		ev.stanza = d.bytes()
	case opServer:
		ev.now = clock.Time(d.i64())
		ev.stanza = d.bytes()
	case opClose, opUp, opDown:
		ev.now = clock.Time(d.i64())
		ev.a = d.bytes()
	case opRoster, opBlock:
		ev.a = d.bytes()
		ev.b = d.bytes()
		ev.flag = d.u8()
	case opHide:
		ev.a = d.bytes()
		ev.flag = d.u8()
	case opLimit:
		ev.now = clock.Time(d.i64())
		ev.nums[0] = d.i64()
		ev.nums[1] = d.i64()
	case opRestore, opApply:
		ev.stanza = d.bytes()
	case opState, opSnapshot, opRestarted:
	default:
		d.bad = true
	}
	if d.bad {
		d.i = start
		return false
	}
	return true
}
