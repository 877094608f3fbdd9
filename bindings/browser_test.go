//go:build unix

package bindings_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/internal/prereq"
)

// ChromiumEnv names the Chromium binary the browser test runs, when it is
// not `chromium` (Debian's) on PATH.
const ChromiumEnv = "LASTSEEN_CHROMIUM"

// browserPage imports README's Node.js example, served verbatim as
// /example.js: an import map resolves the package name to the served
// package, console.log is collected, and the page posts what the example
// printed (or the error it threw) to /result.
const browserPage = `<!doctype html>
<html><head><meta charset="utf-8">
<script type="importmap">{"imports": {"@lastseen-xmpp/lastseen": "/pkg/index.js"}}</script>
<script>
  let printed = '';
  console.log = (...args) => { printed += args.join(' ') + '\n'; };
  const report = (what, text) => fetch('/result', { method: 'POST', body: what + '\n' + text });
  window.addEventListener('error', (e) => report('error', e.message));
</script>
</head><body>
<script type="module">
  try {
    await import('/example.js');
    report('printed', printed);
  } catch (e) {
    report('error', String(e?.stack ?? e));
  }
</script>
</body></html>
`

// TestBrowserExample loads the Node.js package, unchanged, in headless
// Chromium from a server on 127.0.0.1 (the package as npm packs it:
// index.js with lastseen.wasm beside it), plays README's Node.js example
// in the page and checks the reply stanza it prints.
func TestBrowserExample(t *testing.T) {
	chromium := os.Getenv(ChromiumEnv)
	if chromium == "" {
		chromium = "chromium"
	}
	chromium, err := exec.LookPath(chromium)
	if err != nil {
		prereq.Missing(t, "the browser test (headless Chromium)", err)
	}
	example := snippet(t, "js")
	files := map[string]string{
		"/pkg/index.js":      filepath.Join("node", "index.js"),
		"/pkg/lastseen.wasm": filepath.Join("..", "wasm", "lastseen.wasm"),
	}
	results := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(browserPage))
			return
		case "/example.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write([]byte(example))
			return
		case "/result":
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			select {
			case results <- string(body):
			default: // only the first report counts
			}
			return
		}
		file, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(file, ".js") {
			w.Header().Set("Content-Type", "text/javascript")
		} else {
			w.Header().Set("Content-Type", "application/wasm")
		}
		http.ServeFile(w, r, file)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// One page load, bounded in time; Chromium talks to nothing but this
	// server (no first-run, sync, update or background requests). It runs
	// in its own process group, so that ending it ends its renderers too.
	cmd := exec.Command(chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "http://"+ln.Addr().String()+"/")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopGroup(t, cmd.Process.Pid, exited)

	var result string
	select {
	case result = <-results:
	case err := <-exited:
		exited <- err // for stopGroup
		t.Fatalf("chromium exited before the page reported: %v\n%s", err, stderr.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("the page reported nothing in 90 s\n%s", stderr.String())
	}
	what, text, _ := strings.Cut(result, "\n")
	if what != "printed" {
		t.Fatalf("the example failed in the browser: %s", text)
	}
	if !want.MatchString(text) {
		t.Fatalf("the example printed in the browser:\n%s\nwant a line matching\n%s", text, want)
	}
}

// stopGroup ends the process group pgid that the test started: SIGTERM,
// then SIGKILL if it has not exited within 10 s.
func stopGroup(t *testing.T, pgid int, exited chan error) {
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
}
