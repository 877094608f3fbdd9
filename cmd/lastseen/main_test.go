package main

import (
	"bytes"
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
