package engine_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/lastseen-xmpp/lastseen/internal/engine"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
)

// corpus lists the project's scenarios, the conformance cases copied into
// core/testdata/conformance and, when ../shared is present (CI always has
// it; a user's clone does not), the public conformance cases there.
func corpus(t *testing.T) []string {
	t.Helper()
	var own []string
	for _, dir := range []string{"scenarios", "conformance"} {
		files, err := filepath.Glob("../../core/testdata/" + dir + "/*.txt")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no scenarios in core/testdata/%s", dir)
		}
		own = append(own, files...)
	}
	shared, _ := filepath.Glob("../../../shared/conformance/cases/*.txt")
	if len(shared) == 0 {
		t.Log("../shared/conformance/cases not present: running the project's own scenarios only")
	}
	return append(own, shared...)
}

func runCorpus(t *testing.T, f scenario.Factory) {
	for _, path := range corpus(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if r := scenario.RunFile(f, path); !r.Passed() {
				t.Error(r.String())
			}
		})
	}
}

func TestCorpusNative(t *testing.T) { runCorpus(t, engine.Native()) }

// TestCorpusSharded runs the corpus through core.Sharded with several
// shard counts: sharding must change nothing a host can see.
func TestCorpusSharded(t *testing.T) {
	for _, n := range []int{1, 3, 16} {
		t.Run(string(rune('0'+n%10)), func(t *testing.T) { runCorpus(t, engine.Sharded(n)) })
	}
}

func TestSharedCasesPresent(t *testing.T) {
	if _, err := os.Stat("../../../shared/conformance/cases"); err != nil {
		t.Skip("../shared not present")
	}
	var out bytes.Buffer
	paths, _ := filepath.Glob("../../../shared/conformance/cases/*.txt")
	passed, failed := scenario.RunFiles(&out, engine.Native(), paths...)
	if failed != 0 || passed != len(paths) {
		t.Fatalf("%d passed, %d failed:\n%s", passed, failed, out.String())
	}
}
