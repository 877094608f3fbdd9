//go:build race

package core_test

// raceEnabled is true under -race, where sync.Pool drops a share of what
// it is given on purpose, so allocation counts of pooled paths say nothing.
const raceEnabled = true
