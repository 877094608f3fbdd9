package floor

import (
	"bytes"
	"strings"
	"testing"
)

func TestMainAndParse(t *testing.T) {
	var out bytes.Buffer
	if err := Main([]string{"2", "1"}, &out); err != nil {
		t.Fatal(err)
	}
	med, err := Parse(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kernels() {
		if med[k.Name] <= 0 {
			t.Errorf("%s: %v ns/op", k.Name, med[k.Name])
		}
	}
	if n := strings.Count(out.String(), "\n"); n != 2*len(Kernels()) {
		t.Errorf("%d lines, want %d", n, 2*len(Kernels()))
	}
}

func TestMainRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{nil, {"1"}, {"0", "1"}, {"1", "x"}} {
		if err := Main(args, new(bytes.Buffer)); err == nil {
			t.Errorf("Main(%q) accepted", args)
		}
	}
}

func TestParseRefusesMissingKernels(t *testing.T) {
	if _, err := Parse("byte-loop 12.5\n"); err == nil {
		t.Error("accepted output without every kernel")
	}
	if _, err := Parse("byte-loop twelve\n"); err == nil {
		t.Error("accepted a bad number")
	}
}
