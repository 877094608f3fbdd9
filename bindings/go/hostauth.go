package wazerohost

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// The lastseen imports of ABI version 3 ("Facts from the host"): the guest
// asks them when its machine was configured with option 9, which an Engine
// does when Config.Auth is set. They answer from the calling Engine's
// Config.Auth, found through the context of the call into the guest.

// Answers of an import that mean "no answer" (ABI.md).
const (
	hostFailed = -1
	noLister   = -2
)

// engineKey is the context key of the Engine calling into the guest.
type engineKey struct{}

// instantiateHostImports defines the lastseen module in r, shared by every
// instance: each call finds its Engine in its context.
func instantiateHostImports(ctx context.Context, r wazero.Runtime) error {
	i32 := api.ValueTypeI32
	params := []api.ValueType{i32, i32, i32, i32}
	results := []api.ValueType{i32}
	b := r.NewHostModuleBuilder("lastseen")
	for name, fn := range map[string]func(*Engine, api.Memory, []uint64) int32{
		"probe_facts": (*Engine).probeFacts,
		"blocks":      (*Engine).blocks,
		"subscribers": (*Engine).subscribers,
	} {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			v := int32(hostFailed)
			if e, ok := ctx.Value(engineKey{}).(*Engine); ok && e.cfg.Auth != nil {
				v = e.ask(name, func() int32 { return fn(e, mod.Memory(), stack) })
			}
			stack[0] = uint64(uint32(v))
		}), params, results).Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// ask runs an import's answer, turning a panic of the Authorizer into a
// failed answer whose reason becomes the event's error.
func (e *Engine) ask(name string, answer func() int32) (v int32) {
	defer func() {
		if p := recover(); p != nil {
			err, ok := p.(error)
			if !ok {
				err = fmt.Errorf("%v", p)
			}
			e.hostErrs = append(e.hostErrs, fmt.Errorf("%w: %s: %w", ErrAuthorizer, name, err))
			v = hostFailed
		}
	}()
	return answer()
}

// jidArg reads the JID the guest passed at ptr, len. The guest sends
// normalised JIDs, so Parse takes its fast path; parsed JIDs are cached by
// their text, as the guest caches them, so a busy owner costs no parse.
func (e *Engine) jidArg(mem api.Memory, ptr, n uint64) stanza.JID {
	b, ok := mem.Read(uint32(ptr), uint32(n))
	if !ok {
		panic(fmt.Errorf("%w: a JID argument out of bounds", ErrABI))
	}
	if j, ok := e.jids[string(b)]; ok {
		return j
	}
	j, err := stanza.Parse(string(b))
	if err != nil {
		panic(fmt.Errorf("%w: the guest passed %q: %w", ErrABI, b, err))
	}
	if len(e.jids) >= 4096 {
		clear(e.jids)
	}
	e.jids[j.String()] = j
	return j
}

func (e *Engine) probeFacts(mem api.Memory, stack []uint64) int32 {
	owner, prober := e.jidArg(mem, stack[0], stack[1]), e.jidArg(mem, stack[2], stack[3])
	var (
		blocked, hidden bool
		sub             core.Subscription
	)
	if pa, ok := e.cfg.Auth.(core.ProbeAuthorizer); ok {
		blocked, sub, hidden = pa.ProbeFacts(owner, prober)
	} else {
		// What core.ProbeAuthorizer promises to answer in one call.
		blocked = e.cfg.Auth.Blocks(owner, prober)
		sub = e.cfg.Auth.Subscription(owner, prober.Bare())
		hidden = e.cfg.Auth.Hidden(owner)
	}
	v := int32(sub&3) << 1
	if blocked {
		v |= 1
	}
	if hidden {
		v |= 8
	}
	return v
}

func (e *Engine) blocks(mem api.Memory, stack []uint64) int32 {
	if e.cfg.Auth.Blocks(e.jidArg(mem, stack[0], stack[1]), e.jidArg(mem, stack[2], stack[3])) {
		return 1
	}
	return 0
}

// subscribers lists the Authorizer's subscribers of the owner as str
// records, writing them into the guest's buffer when they fit.
func (e *Engine) subscribers(mem api.Memory, stack []uint64) int32 {
	l, ok := e.cfg.Auth.(core.SubscriberLister)
	if !ok {
		return noLister
	}
	owner := e.jidArg(mem, stack[0], stack[1])
	e.subs = e.subs[:0]
	l.Subscribers(owner, func(c stanza.JID) bool {
		e.subs = binary.LittleEndian.AppendUint32(e.subs, uint32(len(c.String())))
		e.subs = append(e.subs, c.String()...)
		return true
	})
	if len(e.subs) <= int(uint32(stack[3])) && !mem.Write(uint32(stack[2]), e.subs) {
		panic(fmt.Errorf("%w: the subscriber buffer is out of bounds", ErrABI))
	}
	return int32(len(e.subs))
}
