package main

// What bounds the WASM targets, measured in the same run (issue 4 asks for
// the evidence when a target is missed): the floor kernels of
// bench/internal/floor timed natively, then compiled to GOOS=wasip1 and
// timed inside wazero and Node with no ABI in between; and the size of
// the smallest reactor the gc toolchain builds, and of one that links only
// the RFC 7622 dependencies, next to lastseen.wasm.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/lastseen-xmpp/lastseen/bench/internal/floor"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// FloorInfo is the bounds section of the results.
type FloorInfo struct {
	Missing string      `json:"missing,omitempty"`
	Kernels []FloorCell `json:"kernels,omitempty"`
	// Module sizes built with wasm/build.sh's flags.
	EmptyBytes int64 `json:"empty_reactor_bytes"`
	DepsBytes  int64 `json:"deps_reactor_bytes"`
}

// FloorCell is one kernel's wall-clock median ns/op on each engine; an
// engine that could not run shows 0 and Missing says why.
type FloorCell struct {
	Name    string  `json:"name"`
	Desc    string  `json:"desc"`
	Native  float64 `json:"native_ns"`
	Wazero  float64 `json:"wazero_ns"`
	Node    float64 `json:"node_ns"`
	Missing string  `json:"missing,omitempty"`
}

// goBuildWasm builds pkg for wasip1 with the flags wasm/build.sh pins, so
// that sizes compare like with like.
func goBuildWasm(pkg, out string, reactor bool) error {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=", "GOWASM=", "GOEXPERIMENT=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, stderr.String())
	}
	return nil
}

func measureFloor(rounds, ms int) FloorInfo {
	if _, err := exec.LookPath("go"); err != nil {
		return FloorInfo{Missing: "no go command to build the floor modules"}
	}
	dir, err := os.MkdirTemp("", "lastseen-floor")
	if err != nil {
		return FloorInfo{Missing: err.Error()}
	}
	defer os.RemoveAll(dir)
	var fi FloorInfo
	for _, b := range []struct {
		pkg  string
		size *int64
	}{{"./bench/internal/floor/empty", &fi.EmptyBytes}, {"./bench/internal/floor/deps", &fi.DepsBytes}} {
		out := filepath.Join(dir, filepath.Base(b.pkg)+".wasm")
		if err := goBuildWasm(b.pkg, out, true); err != nil {
			return FloorInfo{Missing: err.Error()}
		}
		st, err := os.Stat(out)
		if err != nil {
			return FloorInfo{Missing: err.Error()}
		}
		*b.size = st.Size()
	}
	mod := filepath.Join(dir, "floor.wasm")
	if err := goBuildWasm("./bench/internal/floor/wasmcmd", mod, false); err != nil {
		return FloorInfo{Missing: err.Error()}
	}
	args := []string{strconv.Itoa(rounds), strconv.Itoa(ms)}
	var native bytes.Buffer
	if err := floor.Main(args, &native); err != nil {
		return FloorInfo{Missing: err.Error()}
	}
	nat, err := floor.Parse(native.String())
	if err != nil {
		return FloorInfo{Missing: err.Error()}
	}
	wz, wzErr := floorWazero(mod, args)
	nd, ndErr := floorNode(mod, args)
	for _, k := range floor.Kernels() {
		c := FloorCell{Name: k.Name, Desc: k.Desc, Native: nat[k.Name], Wazero: wz[k.Name], Node: nd[k.Name]}
		var why []string
		if wzErr != nil {
			why = append(why, "wazero: "+wzErr.Error())
		}
		if ndErr != nil {
			why = append(why, "node: "+ndErr.Error())
		}
		if len(why) > 0 {
			c.Missing = fmt.Sprint(why)
		}
		fi.Kernels = append(fi.Kernels, c)
	}
	return fi
}

// floorWazero runs the floor command in wazero with the compiler the
// wazero engine uses, and the host's real clocks (wazero's default clocks
// are fake, which would make every kernel look free).
func floorWazero(mod string, args []string) (map[string]float64, error) {
	code, err := os.ReadFile(mod)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var stdout, stderr bytes.Buffer
	cfg := wazero.NewModuleConfig().WithArgs(append([]string{"floor"}, args...)...).
		WithStdout(&stdout).WithStderr(&stderr).WithSysNanotime().WithSysWalltime()
	_, err = r.InstantiateWithConfig(ctx, code, cfg)
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return floor.Parse(stdout.String())
}

func floorNode(mod string, args []string) (map[string]float64, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return nil, errors.New("node not installed")
	}
	cmd := exec.Command("node", append([]string{"--no-warnings", filepath.Join(benchDir(), "floor_node.mjs"), mod}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return floor.Parse(stdout.String())
}
