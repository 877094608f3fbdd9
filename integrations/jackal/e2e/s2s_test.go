package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// s2sDomains are the two servers' domains: IP literals (RFC 7622 §3.2),
// because jackal finds a peer by SRV and then at <domain>:5269 and has no
// static peer address; an IP-literal domain needs neither DNS nor
// /etc/hosts. Every address in 127.0.0.0/8 is loopback on Linux.
var s2sDomains = [2]string{"127.0.0.2", "127.0.0.3"}

// s2sPort is the port jackal dials on a peer without SRV records.
const s2sPort = 5269

// s2sCA writes a certificate authority and one certificate per domain into
// dir, and returns the CA file's path. jackal verifies a peer's
// certificate against the system roots (Go reads SSL_CERT_FILE), and its
// SASL EXTERNAL wants the sender's domain among the DNS names.
func s2sCA(t *testing.T, dir string, domains []string) string {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lastseen e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(dir, "ca.pem")
	writePEM(t, caPath, "CERTIFICATE", caDER)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range domains {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		leaf := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: d},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			DNSNames: []string{d}, IPAddresses: []net.IP{net.ParseIP(d)},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, filepath.Join(dir, d+".pem"), "CERTIFICATE", der)
		writePEM(t, filepath.Join(dir, d+".key"), "EC PRIVATE KEY", kb)
	}
	return caPath
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// s2sUsable reports why the s2s case cannot run here, or "".
func s2sUsable() string {
	for _, d := range s2sDomains {
		l, err := net.Listen("tcp", net.JoinHostPort(d, fmt.Sprint(s2sPort)))
		if err != nil {
			return fmt.Sprintf("cannot listen on %s:%d: %v", d, s2sPort, err)
		}
		l.Close()
	}
	return ""
}

// s2sServer makes a server for domain with an s2s listener on
// domain:5269 and the CA's certificate for it.
func s2sServer(t *testing.T, b bins, domain, engine, certDir, caPath string) *server {
	t.Helper()
	srv := newServer(t, b, domain, engine)
	cfgPath := filepath.Join(srv.dir, "config.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c := strings.Replace(string(cfg), "  - domain: "+domain+"\n", fmt.Sprintf(`  - domain: %s
    tls:
      cert_file: %s
      privkey_file: %s
`, domain, filepath.Join(certDir, domain+".pem"), filepath.Join(certDir, domain+".key")), 1)
	c += fmt.Sprintf(`s2s:
  listeners:
    - bind_addr: %s
      port: %d
  out:
    dial_timeout: 3s
    req_timeout: 5s
`, domain, s2sPort)
	if err := os.WriteFile(cfgPath, []byte(c), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.env = []string{"SSL_CERT_FILE=" + caPath}
	return srv
}

// s2sCase runs the server-to-server case on engine: alice of the first
// domain follows bob of the second and probes him through both servers.
func s2sCase(t *testing.T, b bins, engine string) {
	if why := s2sUsable(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("s2s prerequisite missing: %s", why)
		}
		t.Skipf("s2s SKIPPED: %s", why)
	}
	certDir := t.TempDir()
	caPath := s2sCA(t, certDir, s2sDomains[:])
	a := s2sServer(t, b, s2sDomains[0], engine, certDir, caPath)
	bs := s2sServer(t, b, s2sDomains[1], engine, certDir, caPath)
	a.start()
	bs.start()
	// A server stopped by a failing case must free its s2s port for the
	// next engine's servers.
	t.Cleanup(a.stop)
	t.Cleanup(bs.stop)
	a.addUser("alice", password)
	bs.addUser("bob", password)
	alice, bob := "alice@"+a.domain, "bob@"+bs.domain

	bobC := online(t, bs, "bob", "b", "over there")
	aliceC := dial(t, a, "alice", "s")
	aliceC.iq("roster", "get", "<query xmlns='jabber:iq:roster'/>")
	subscribe(t, aliceC, bobC, alice, bob)

	// The routed probe crosses to the other server, whose lastseen answers
	// with bob's presence and a delay. The reply comes after the answer to
	// a local marker, so it is awaited on its own (at most stanzaWait; the
	// first probe also waits for the s2s streams to be set up and
	// verified).
	c := dial(t, a, "alice", "s2s")
	c.send("<presence to='" + bob + "' type='probe' id='s2s'/>")
	n := c.waitFor("reply from "+bob+" across s2s", func(n node) bool {
		return n.XMLName.Local == "presence" && strings.HasPrefix(n.attr("from"), bob) && n.attr("to") == c.jid
	})
	t.Logf("%s got %s", c.jid, n)
	got := []node{n}
	if n.attr("from") != bob+"/b" || n.attr("type") != "" {
		t.Fatalf("want available presence from %s/b across s2s, got %v", bob, n)
	}
	if st, ok := got[0].child("status", ""); !ok || st.Text != "over there" {
		t.Errorf("want status 'over there', got %s", got[0])
	}
	stamp(t, got[0])

	// Last Activity across s2s: the other server's lastseen answers.
	q := lastQuery(t, c.lastActivity(bob, "s2s-la"), bob)
	if q.attr("seconds") != "0" {
		t.Errorf("want seconds='0' for online bob, got %s", q)
	}
}
