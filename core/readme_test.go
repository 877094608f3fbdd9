package core_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEGoProgram compiles and runs the README's program for the
// native library (the ```go block that does not use the wazero host) and
// checks what it prints: the reply to Juliet's probe, stamped to the
// second.
func TestREADMEGoProgram(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var programs []string
	for _, part := range strings.Split(string(readme), "```go\n")[1:] {
		body, _, ok := strings.Cut(part, "\n```")
		if !ok {
			t.Fatal("a ```go block of README.md is not closed")
		}
		if !strings.Contains(body, "bindings/go") {
			programs = append(programs, body+"\n")
		}
	}
	if len(programs) != 1 {
		t.Fatalf("README.md has %d ```go blocks for the native library, want 1", len(programs))
	}
	// Inside the module, so that its imports resolve to this tree;
	// testdata is outside ./... patterns.
	dir := filepath.Join("testdata", "readme-go")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(programs[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./"+filepath.ToSlash(dir))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, stderr.String())
	}
	want := regexp.MustCompile(`^reply juliet@capulet\.com/chamber <presence from='romeo@montague\.com' to='juliet@capulet\.com/chamber' type='unavailable'><status>Out of battery</status><delay xmlns='urn:xmpp:delay' from='romeo@montague\.com/balcony' stamp='\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ'/></presence>\n$`)
	if !want.Match(out) {
		t.Fatalf("the README program printed:\n%s\nwant a line matching\n%s", out, want)
	}
}

// TestExamplesAreNamed checks that every Example function of core and
// store is named in the README, and those of core in the package
// documentation too, so that a reader of either finds them (go doc does
// not print examples).
func TestExamplesAreNamed(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"example_test.go", filepath.Join("..", "store", "example_test.go")} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		names := regexp.MustCompile(`(?m)^func (Example\w*)\(\)`).FindAllStringSubmatch(string(src), -1)
		if len(names) == 0 {
			t.Fatalf("%s has no examples", file)
		}
		for _, n := range names {
			if !strings.Contains(string(readme), "`"+n[1]+"`") {
				t.Errorf("README.md does not name %s of %s", n[1], file)
			}
			if file == "example_test.go" && !regexp.MustCompile(`\b`+n[1]+`\b`).Match(doc) {
				t.Errorf("doc.go does not name %s", n[1])
			}
		}
	}
}
