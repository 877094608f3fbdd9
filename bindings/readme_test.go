package bindings_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lastseen-xmpp/lastseen/internal/prereq"
)

// snippet returns the body of the only fenced block of lang in README.md.
func snippet(t *testing.T, lang string) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(readme), "```"+lang+"\n")
	if len(parts) != 2 {
		t.Fatalf("README.md has %d ```%s blocks, want 1", len(parts)-1, lang)
	}
	body, _, ok := strings.Cut(parts[1], "\n```")
	if !ok {
		t.Fatalf("the ```%s block is not closed", lang)
	}
	return body + "\n"
}

// want is the line the examples print (the stamp is the time of the run).
var want = regexp.MustCompile(`^reply juliet@capulet\.com/chamber <presence from='romeo@montague\.com/balcony' to='juliet@capulet\.com/chamber'><status>On the balcony</status><delay xmlns='urn:xmpp:delay' from='romeo@montague\.com/balcony' stamp='\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z'/></presence>\n$`)

// run runs cmd in dir and checks that it printed the expected line.
func run(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	if !want.Match(out) {
		t.Fatalf("the example printed:\n%s\nwant a line matching\n%s", out, want)
	}
	if name != "go" && stderr.Len() > 0 {
		t.Fatalf("the example printed on stderr (a warning?):\n%s", stderr.String())
	}
}

// TestGoExample builds and runs README.md's Go program inside this module.
func TestGoExample(t *testing.T) {
	src := snippet(t, "go")
	dir := filepath.Join("testdata", "readme-go")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		os.Remove("testdata") // only if empty
	})
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, ".", "go", "run", "./"+filepath.ToSlash(dir))
}

// TestNodeExample runs README.md's Node.js program inside the package, where
// it can import the package by its name.
func TestNodeExample(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		prereq.Missing(t, "the README's Node.js example", err)
	}
	src := snippet(t, "js")
	f, err := os.CreateTemp("node", ".readme-example-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.WriteString(src); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, "node", "node", filepath.Base(f.Name()))
}

// TestLuaExample runs README.md's Lua program in bindings/lua, where
// require finds the binding as the README says.
func TestLuaExample(t *testing.T) {
	if _, err := exec.LookPath("lua5.4"); err != nil {
		prereq.Missing(t, "the README's Lua example", err)
	}
	if _, err := os.Stat(filepath.Join("lua", "lastseen_core.so")); err != nil {
		prereq.Missing(t, "the README's Lua example (bash bindings/lua/build.sh)", err)
	}
	f, err := os.CreateTemp("lua", ".readme-example-*.lua")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.WriteString(snippet(t, "lua")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, "lua", "lua5.4", filepath.Base(f.Name()))
}

// TestTopREADMEShowsTheTestedExamples checks that the project README shows
// the two examples exactly as this package's README has them, so that what
// a reader copies from the front page is what the tests above ran.
func TestTopREADMEShowsTheTestedExamples(t *testing.T) {
	top, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"js", "go"} {
		block := "```" + lang + "\n" + snippet(t, lang) + "```"
		if !strings.Contains(string(top), block) {
			t.Errorf("README.md does not show the tested %s example of bindings/README.md verbatim", lang)
		}
	}
}
