//go:build !race

package core_test

// raceEnabled is true under -race; see race_on_test.go.
const raceEnabled = false
