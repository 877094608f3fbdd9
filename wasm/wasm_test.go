package wasm_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/lastseen-xmpp/lastseen/wasm"
)

// TestModuleMatchesABIDoc checks the embedded module against ABI.md: the
// exports it documents and no others, WASI imports that its table lists,
// and the version.
func TestModuleMatchesABIDoc(t *testing.T) {
	doc, err := os.ReadFile("ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	compiled, err := r.CompileModule(ctx, wasm.Module)
	if err != nil {
		t.Fatal(err)
	}
	var exports []string
	for name := range compiled.ExportedFunctions() {
		exports = append(exports, name)
	}
	for name := range compiled.ExportedMemories() {
		exports = append(exports, name)
	}
	slices.Sort(exports)
	want := []string{"_initialize", "lastseen_abi_version", "lastseen_ctrl", "lastseen_reserve", "lastseen_step", "memory"}
	if !slices.Equal(exports, want) {
		t.Errorf("exports %v, ABI.md documents %v", exports, want)
	}
	for _, name := range want {
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("ABI.md's export table lacks %s", name)
		}
	}
	// Section 2's table names every import.
	section2 := string(doc)[strings.Index(string(doc), "## 2. WASI imports"):strings.Index(string(doc), "## 3. Time")]
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(section2, -1) {
		documented[m[1]] = true
	}
	// Section 5's host import table names the lastseen imports (version 3),
	// with their signatures.
	hostImports := string(doc)[strings.Index(string(doc), "### Facts from the host"):]
	var fromHost []string
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case "wasi_snapshot_preview1":
			if !documented[name] {
				t.Errorf("import %s is not in ABI.md's WASI table", name)
			}
		case "lastseen":
			fromHost = append(fromHost, name)
			sig := fmt.Sprintf("| `%s` | `(%s) -> %s` |", name, strings.Repeat("i32, ", len(f.ParamTypes())-1)+"i32", "i32")
			if len(f.ResultTypes()) != 1 || !strings.Contains(hostImports, sig) {
				t.Errorf("import lastseen.%s (%d params, %d results) is not in ABI.md's host import table as %s", name, len(f.ParamTypes()), len(f.ResultTypes()), sig)
			}
		default:
			t.Errorf("import %s.%s: the module must import nothing but WASI and lastseen", mod, name)
		}
	}
	slices.Sort(fromHost)
	if want := []string{"blocks", "probe_facts", "subscribers"}; !slices.Equal(fromHost, want) {
		t.Errorf("lastseen imports %v, want %v", fromHost, want)
	}
	if len(compiled.ImportedMemories()) != 0 {
		t.Error("the module imports a memory")
	}

	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	// With option 9 off the guest never calls these; the module needs them
	// to instantiate.
	never := func(context.Context, int32, int32, int32, int32) int32 { panic("lastseen import called") }
	if _, err := r.NewHostModuleBuilder("lastseen").
		NewFunctionBuilder().WithFunc(never).Export("probe_facts").
		NewFunctionBuilder().WithFunc(never).Export("blocks").
		NewFunctionBuilder().WithFunc(never).Export("subscribers").
		Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithStartFunctions("_initialize").WithSysNanotime().WithSysWalltime())
	if err != nil {
		t.Fatal(err)
	}
	res, err := mod.ExportedFunction("lastseen_abi_version").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != wasm.ABIVersion || !strings.HasPrefix(string(doc), "# lastseen WebAssembly ABI, version "+strconv.Itoa(wasm.ABIVersion)+"\n") {
		t.Errorf("module ABI version %d, package says %d", res[0], wasm.ABIVersion)
	}
	t.Logf("lastseen.wasm: %d bytes (%.2f MiB)", len(wasm.Module), float64(len(wasm.Module))/(1<<20))
}

// TestModuleIsCurrent rebuilds the module and compares it with the
// committed one. CI runs `bash wasm/build.sh -check` itself; set
// LASTSEEN_WASM_CHECK=1 to run it here too.
func TestModuleIsCurrent(t *testing.T) {
	if os.Getenv("LASTSEEN_WASM_CHECK") == "" {
		t.Skip("set LASTSEEN_WASM_CHECK=1 to rebuild lastseen.wasm and compare (CI runs wasm/build.sh -check)")
	}
	out, err := exec.Command("bash", "build.sh", "-check").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
