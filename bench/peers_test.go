package main

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/internal/prereq"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
)

// TestSameReplies is what makes the comparison honest: on every workload,
// every engine and peer must emit the same stanzas as the native engine,
// operation after operation. Stanzas compare as the conformance runner
// compares them (scenario.Equal: attributes as a set, delay stamps as
// instants), in both directions so that an id on either side counts.
func TestSameReplies(t *testing.T) {
	cs := contenders()
	for _, w := range workloads() {
		t.Run(w.Name, func(t *testing.T) {
			ref, err := w.start(cs[0])
			if err != nil {
				t.Fatal(err)
			}
			defer ref.im.Release()
			var others []*instance
			for _, c := range cs[1:] {
				if c.Missing != "" || c.External || c.Peer && w.NoPeers != "" {
					continue // External ones: see TestExternalSameReplies
				}
				in, err := w.start(c)
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				in.batch = nil // compare stanza by stanza
				defer in.im.Release()
				others = append(others, in)
			}
			// Four operations, then a probe that shows what each tracked
			// (updates emit nothing of their own).
			for op := range 5 {
				if err := step(ref, op); err != nil {
					t.Fatalf("native, op %d: %v", op, err)
				}
				want := outputs(ref)
				for _, in := range others {
					name := in.name
					if err := step(in, op); err != nil {
						t.Fatalf("%s, op %d: %v", name, op, err)
					}
					got := outputs(in)
					if len(got) != len(want) {
						t.Fatalf("%s, op %d: %d stanzas, native emitted %d", name, op, len(got), len(want))
					}
					for i := range want {
						if ok, diff := scenario.Equal(want[i], got[i]); !ok {
							t.Errorf("%s, op %d, stanza %d differs from native:\nnative: %s\n%s:  %s\n%s", name, op, i, want[i], name, got[i], diff)
						} else if ok, diff := scenario.Equal(got[i], want[i]); !ok {
							t.Errorf("%s, op %d, stanza %d differs from native (reverse):\nnative: %s\n%s:  %s\n%s", name, op, i, want[i], name, got[i], diff)
						}
					}
				}
			}
		})
	}
}

// step runs operation op of the workload, and as op 4 a server probe for
// the workload's user.
func step(in *instance, op int) error {
	if op < 4 {
		in.last = in.w.Want
		return in.one()
	}
	n, err := in.im.Server(in.now.Add(time.Second), []byte(probeUser))
	in.last = n
	return err
}

func outputs(in *instance) [][]byte {
	out := make([][]byte, in.last)
	for i := range out {
		out[i] = bytes.Clone(in.im.Output(i))
	}
	return out
}

// TestExternalSameReplies is TestSameReplies for the engines that run in
// another process: node (node_bench.mjs) and lua (lua_bench.lua), in
// check mode.
func TestExternalSameReplies(t *testing.T) {
	for _, e := range []struct {
		name    string
		missing func() string
	}{{"node", nodeMissing}, {"lua", luaMissing}} {
		t.Run(e.name, func(t *testing.T) { externalSameReplies(t, e.name, e.missing) })
	}
}

func externalSameReplies(t *testing.T, engine string, missing func() string) {
	if why := missing(); why != "" {
		prereq.Missing(t, "the benchmark's "+engine+" engine", errors.New(why))
	}
	ws := workloads()
	res, err := runExternal(engine, ws, defaultConfig(true), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		ref, err := w.start(contenders()[0])
		if err != nil {
			t.Fatal(err)
		}
		r := res[w.Name]
		got := append(r.Ops, r.Probe)
		for op := range 5 {
			if err := step(ref, op); err != nil {
				t.Fatalf("%s: native, op %d: %v", w.Name, op, err)
			}
			want := outputs(ref)
			if op >= len(got) || len(got[op]) != len(want) {
				t.Fatalf("%s, op %d: %s emitted %v, native %d stanzas", w.Name, op, engine, got, len(want))
			}
			for i := range want {
				a, b := want[i], []byte(got[op][i])
				if ok, diff := scenario.Equal(a, b); !ok {
					t.Errorf("%s, op %d, stanza %d: %s differs from native:\n%s", w.Name, op, i, engine, diff)
				} else if ok, diff := scenario.Equal(b, a); !ok {
					t.Errorf("%s, op %d, stanza %d: %s differs from native (reverse):\n%s", w.Name, op, i, engine, diff)
				}
			}
		}
		ref.im.Release()
	}
}
