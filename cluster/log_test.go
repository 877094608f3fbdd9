package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
)

func TestBatchRoundTrip(t *testing.T) {
	b := batch{writer: "/t/w/m/n1/1f", seq: 42, entries: []entry{
		{kind: kindClient, stamp: clock.Epoch2000, jid: "a@b.c/r", raw: []byte(`<presence/>`)},
		{kind: kindClose, stamp: -5, jid: "a@b.c/r"},
		{kind: kindUp, stamp: 1, jid: "b.c"},
		{kind: kindDown, stamp: 2, jid: "b.c"},
		{kind: kindLimit, stamp: 3, limit: core.RateLimit{Burst: 3, Per: time.Minute}},
	}}
	enc := b.encode(nil)
	got, err := decodeBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b, got, cmp.AllowUnexported(batch{}, entry{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Every truncation and every flipped byte is refused.
	for i := range enc {
		if _, err := decodeBatch(enc[:i]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: got %v, want ErrCorrupt", i, err)
		}
		bad := append([]byte(nil), enc...)
		bad[i] ^= 0x40
		if _, err := decodeBatch(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("byte %d flipped: got %v, want ErrCorrupt", i, err)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	r := newReplicated()
	r.rev, r.clock = 99, clock.Epoch2000
	r.members["/t/w/m/n1/1"] = 7
	r.members["/t/w/m/n2/2"] = 9
	r.owners["a@b.c/x"] = "/t/w/m/n1/1"
	limit := core.RateLimit{Burst: 4, Per: time.Second}
	machine := []byte("machine bytes")
	enc := appendSnapshot(nil, &r, limit, machine)
	gr, gl, gm, err := decodeSnapshot(enc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, gr, cmp.AllowUnexported(replicated{})); diff != "" {
		t.Errorf("replicated state (-want +got):\n%s", diff)
	}
	if gl != limit || string(gm) != string(machine) {
		t.Errorf("limit %v machine %q, want %v %q", gl, gm, limit, machine)
	}
	for i := range enc {
		if _, _, _, err := decodeSnapshot(enc[:i]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: got %v, want ErrCorrupt", i, err)
		}
	}
	if got := r.oldest(); got != "/t/w/m/n1/1" {
		t.Errorf("oldest member %q, want the one created first", got)
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	// Start checks its Config before it talks to etcd: nothing listens here.
	cli := newClient(t, []string{"http://127.0.0.1:1"})
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no client", Config{NodeID: "n1"}},
		{"no node ID", Config{Client: cli}},
		{"a slash in the node ID", Config{Client: cli, NodeID: "a/b"}},
		{"journal on", Config{Client: cli, NodeID: "n1", Core: core.Config{Journal: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Start(context.Background(), tc.cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
}
