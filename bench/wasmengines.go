package main

// The WASM engines (issue 3) plug in here: an Impl, ideally also a Batcher,
// for the wazero host in bindings/go and for the Node binding. Until they
// exist their rows read "n/a (not built yet)"; the bench never fakes them.

func wasmContenders() []Contender {
	return []Contender{
		{Name: "wazero", Missing: "not built yet"},
		{Name: "node", Missing: "not built yet"},
	}
}
