// Command empty is the smallest reactor the gc toolchain builds: bench
// builds it for GOOS=wasip1 with lastseen.wasm's flags to show how much of
// the module's size is the Go runtime alone.
package main

func main() {}
