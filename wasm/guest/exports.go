//go:build wasip1

package main

import "unsafe"

// The default buffers are static, so their addresses never change and the
// hot path allocates nothing for the ABI.
var (
	inBuf  [defaultInCap]byte
	outBuf [defaultOutCap]byte
	// ctrl is the control block (ABI.md): the host reads the buffers'
	// addresses and sizes and the last step's result counts from it.
	ctrl [8]uint32
	g    = newGuest(inBuf[:], outBuf[:])
)

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// publish writes the current buffers into the control block.
func publish() {
	ctrl[0] = abiVersion
	ctrl[1] = addr(g.in)
	ctrl[2] = uint32(len(g.in))
	ctrl[3] = addr(g.out[:cap(g.out)])
	ctrl[4] = uint32(cap(g.out))
	ctrl[5] = uint32(len(g.out))
	ctrl[6] = uint32(g.nResults)
	ctrl[7] = 0
}

func init() {
	g.host = wasmHost{}
	publish()
}

// The `lastseen` imports (ABI.md section 5, "Facts from the host"). A
// string goes as its address and length in the guest's memory; the host
// reads it during the call and must not keep the address.

//go:wasmimport lastseen probe_facts
func importProbeFacts(owner unsafe.Pointer, ownerLen uint32, prober unsafe.Pointer, proberLen uint32) int32

//go:wasmimport lastseen blocks
func importBlocks(owner unsafe.Pointer, ownerLen uint32, jid unsafe.Pointer, jidLen uint32) int32

//go:wasmimport lastseen subscribers
func importSubscribers(owner unsafe.Pointer, ownerLen uint32, buf unsafe.Pointer, bufCap uint32) int32

// wasmHost is the host behind the imports.
type wasmHost struct{}

func strArg(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func (wasmHost) probeFacts(owner, prober string) int32 {
	op, ol := strArg(owner)
	pp, pl := strArg(prober)
	return importProbeFacts(op, ol, pp, pl)
}

func (wasmHost) blocks(owner, jid string) int32 {
	op, ol := strArg(owner)
	jp, jl := strArg(jid)
	return importBlocks(op, ol, jp, jl)
}

func (wasmHost) subscribers(owner string, buf []byte) int32 {
	op, ol := strArg(owner)
	return importSubscribers(op, ol, unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)))
}

//go:wasmexport lastseen_abi_version
func exportABIVersion() int32 { return abiVersion }

//go:wasmexport lastseen_ctrl
func exportCtrl() int32 {
	publish()
	return int32(uintptr(unsafe.Pointer(&ctrl)))
}

//go:wasmexport lastseen_reserve
func exportReserve(n int32) (status int32) {
	defer func() {
		if recover() != nil {
			status = statusPanic
		}
		publish()
	}()
	return g.reserve(int(n))
}

//go:wasmexport lastseen_step
func exportStep(n int32) (status int32) {
	defer func() {
		if recover() != nil {
			g.m = nil
			status = statusPanic
		}
		publish()
	}()
	return g.step(int(n))
}
