package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoShowsTheListings(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"demo"}, &out, &errOut); code != 0 {
		t.Fatalf("demo exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		// RULES S3: the server comes up and its buddy gets its presence.
		`out (reply to capulet.com):
       <presence from='montague.com' to='capulet.com'><delay xmlns='urn:xmpp:delay' from='montague.com' stamp='2012-09-10T20:00:00Z'/></presence>`,
		// Listing 2: the last unavailable presence, stamped.
		`<presence from='romeo@montague.com' to='juliet@capulet.com/balcony' type='unavailable' id='probe1'><status>Going offline. Out of battery.</status><delay xmlns='urn:xmpp:delay' from='romeo@montague.com/balcony' stamp='2012-09-10T23:41:07Z'/></presence>`,
		// The Last Activity query beside the probe, answered from the same state.
		`<iq from='romeo@montague.com' to='juliet@capulet.com/balcony' type='result' id='last1'><query xmlns='jabber:iq:last' seconds='34433'>Going offline. Out of battery.</query></iq>`,
		// Listing 4: the server's uptime.
		`<presence from='montague.com' to='juliet@capulet.com/balcony' id='probe2'><delay xmlns='urn:xmpp:delay' from='montague.com' stamp='2012-09-10T20:00:00Z'/></presence>`,
		// A client probe routed with the session's full JID.
		`<presence from='romeo@montague.com/balcony' to='juliet@capulet.com' type='probe' id='probe3'/>`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %s\n--- output:\n%s", want, out.String())
		}
	}
}

func TestReplayExitStatus(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	badf := filepath.Join(dir, "bad.txt")
	os.WriteFile(good, []byte("serve a.example\nup a.example\n"), 0o644)
	os.WriteFile(badf, []byte("serve a.example\nup a.example\nexpect <presence/>\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"replay", good}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "1 passed, 0 failed") {
		t.Errorf("good: exit %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"replay", good, badf}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "1 passed, 1 failed") {
		t.Errorf("bad: exit %d, output %q", code, out.String())
	}
	if code := run([]string{"replay", "-engine=nonsense", good}, &out, &errOut); code != 2 {
		t.Errorf("unknown engine: exit %d, want 2", code)
	}
	if code := run(nil, &out, &errOut); code != 2 {
		t.Errorf("no arguments: exit %d, want 2", code)
	}
}

// TestReplaySharded replays an announcement (RULES S3) on the sharded
// engine: each shard learns of the up, but the buddy must get its presence
// once, which the scenario's exact expectation checks.
func TestReplaySharded(t *testing.T) {
	f := filepath.Join(t.TempDir(), "s3.txt")
	os.WriteFile(f, []byte("serve a.example\nroster a.example b.example both\nup a.example\n"+
		"expect <presence from='a.example' to='b.example'><delay xmlns='urn:xmpp:delay' from='a.example' stamp='2000-01-01T00:00:00Z'/></presence>\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"replay", "-engine=sharded", f}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "1 passed, 0 failed") {
		t.Errorf("exit %d, output %q, errors %q", code, out.String(), errOut.String())
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		wantStderr string
	}{
		{"unknown command", []string{"bogus"}, 2, `lastseen: unknown command "bogus"`},
		{"demo with an argument", []string{"demo", "extra"}, 2, `lastseen demo: takes no arguments, got ["extra"]`},
		{"replay without files", []string{"replay"}, 2, "name at least one scenario file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.wantStderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut.String(), tc.code, tc.wantStderr)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
}

// TestUsageColumns checks that the descriptions of the usage text start in
// one column.
func TestUsageColumns(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"help"}, &out, &out); code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")[1:]
	if len(lines) < 3 {
		t.Fatalf("usage has %d command lines:\n%s", len(lines), out.String())
	}
	col := -1
	for _, l := range lines {
		i := strings.Index(l, "   ")
		for i >= 0 && i+3 < len(l) && l[i+3] == ' ' {
			i++
		}
		if col == -1 {
			col = i
		}
		if i != col || i < 0 {
			t.Errorf("description of %q starts at column %d, want %d", l, i+3, col+3)
		}
	}
}

// TestDemoHeaderCountsItsSteps checks that the demo's header names as many
// steps as it prints.
func TestDemoHeaderCountsItsSteps(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"demo"}, &out, &errOut); code != 0 {
		t.Fatalf("demo exit %d: %s", code, errOut.String())
	}
	steps := 0
	for _, l := range strings.Split(out.String(), "\n") {
		if len(l) > 2 && l[0] >= '1' && l[0] <= '9' && l[1] == '.' {
			steps++
		}
	}
	header, _, _ := strings.Cut(out.String(), "\n")
	if want := fmt.Sprintf("in %d steps", steps); steps == 0 || !strings.Contains(header, want) {
		t.Errorf("header %q does not say %q", header, want)
	}
}

// TestReplayEmptyFileFails checks that a scenario with no input line
// fails: it would check nothing.
func TestReplayEmptyFileFails(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.txt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"replay", empty}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "0 passed, 1 failed") || !strings.Contains(out.String(), "no input line") {
		t.Errorf("exit %d, output %q; want exit 1, a failure saying there is no input line", code, out.String())
	}
}
