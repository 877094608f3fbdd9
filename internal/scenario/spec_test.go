package scenario_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lastseen-xmpp/lastseen/internal/engine"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
)

const specDir = "../../spec"

func readSpec(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(specDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ruleSections splits BEHAVIOUR.md at its rule paragraphs ("**T2 — …"),
// keyed by rule name in lower case; a section runs to the next rule.
func ruleSections(doc string) map[string]string {
	heads := regexp.MustCompile(`(?m)^\*\*([A-Z]\d) — `).FindAllStringSubmatchIndex(doc, -1)
	sections := make(map[string]string)
	for i, h := range heads {
		end := len(doc)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		sections[strings.ToLower(doc[h[2]:h[3]])] = doc[h[0]:end]
	}
	return sections
}

// TestBehaviourLinksScenarios checks that every link of spec/BEHAVIOUR.md
// to a scenario names a file that exists, that every rule-named scenario
// of core/testdata/scenarios is linked under its own rule, and that every
// conformance case is linked.
func TestBehaviourLinksScenarios(t *testing.T) {
	doc := readSpec(t, "BEHAVIOUR.md")
	for _, m := range regexp.MustCompile(`\]\((\.\./[^)]+)\)`).FindAllStringSubmatch(doc, -1) {
		if _, err := os.Stat(filepath.Join(specDir, m[1])); err != nil {
			t.Errorf("BEHAVIOUR.md links to %s: %v", m[1], err)
		}
	}
	sections := ruleSections(doc)
	if len(sections) < 20 {
		t.Fatalf("found %d rule paragraphs in BEHAVIOUR.md, want the 20 rules and more", len(sections))
	}
	own, _ := filepath.Glob("../../core/testdata/scenarios/*.txt")
	for _, p := range own {
		name := strings.TrimSuffix(filepath.Base(p), ".txt")
		rule, _, _ := strings.Cut(name, "-")
		switch rule {
		case "choice":
			continue // pinned by core/CHOICES.md
		case "format":
			// The scenario language itself, pinned by spec/SCENARIOS.md.
			if !strings.Contains(readSpec(t, "SCENARIOS.md"), "(../core/testdata/scenarios/"+name+".txt)") {
				t.Errorf("%s is not linked from SCENARIOS.md", name)
			}
			continue
		}
		sec, ok := sections[rule]
		if !ok {
			t.Errorf("%s: BEHAVIOUR.md has no rule %s", name, strings.ToUpper(rule))
			continue
		}
		if !strings.Contains(sec, "(../core/testdata/scenarios/"+name+".txt)") {
			t.Errorf("%s is not linked under rule %s of BEHAVIOUR.md", name, strings.ToUpper(rule))
		}
	}
	conf, _ := filepath.Glob("../../core/testdata/conformance/*.txt")
	if len(conf) == 0 {
		t.Fatal("no conformance cases")
	}
	for _, p := range conf {
		if !strings.Contains(doc, "(../core/testdata/conformance/"+filepath.Base(p)+")") {
			t.Errorf("conformance case %s is not linked from BEHAVIOUR.md", filepath.Base(p))
		}
	}
}

// TestScenariosExamplePasses runs the example of spec/SCENARIOS.md (its
// indented block) on the native engine.
func TestScenariosExamplePasses(t *testing.T) {
	doc := readSpec(t, "SCENARIOS.md")
	_, rest, ok := strings.Cut(doc, "## An example\n")
	if !ok {
		t.Fatal(`SCENARIOS.md has no "## An example" section`)
	}
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if strings.HasPrefix(l, "    ") {
			lines = append(lines, strings.TrimPrefix(l, "    "))
		} else if len(lines) > 0 && strings.HasPrefix(l, "#") {
			break
		}
	}
	s, err := scenario.Parse("SCENARIOS.md", []byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Run(engine.Native()); !r.Passed() {
		t.Fatal(r.String())
	}
	if n := strings.Count(strings.Join(lines, "\n"), "\nexpect "); n == 0 {
		t.Fatal("the example expects nothing")
	}
}
