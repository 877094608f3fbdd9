package cluster

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Test helpers: embedded etcd members on loopback, each with its own data
// directory and free ports.

// freePorts reserves n distinct free loopback ports. They are released
// before etcd binds them, so another process could take one in between;
// on this machine that has not been seen, and a clash fails loudly.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// memberSpec is one etcd member of a test cluster.
type memberSpec struct {
	Name       string
	Dir        string
	PeerPort   int
	ClientPort int
}

func (m memberSpec) clientURL() string { return fmt.Sprintf("http://127.0.0.1:%d", m.ClientPort) }
func (m memberSpec) peerURL() string   { return fmt.Sprintf("http://127.0.0.1:%d", m.PeerPort) }

// clusterSpecs describes n members under dir.
func clusterSpecs(t testing.TB, dir string, n int) []memberSpec {
	ports := freePorts(t, 2*n)
	specs := make([]memberSpec, n)
	for i := range specs {
		specs[i] = memberSpec{
			Name: fmt.Sprintf("m%d", i+1), Dir: fmt.Sprintf("%s/m%d", dir, i+1),
			PeerPort: ports[2*i], ClientPort: ports[2*i+1],
		}
	}
	return specs
}

func initialCluster(specs []memberSpec) string {
	var parts []string
	for _, s := range specs {
		parts = append(parts, s.Name+"="+s.peerURL())
	}
	return strings.Join(parts, ",")
}

func endpoints(specs []memberSpec) []string {
	var e []string
	for _, s := range specs {
		e = append(e, s.clientURL())
	}
	return e
}

// startMember starts one embedded member of the cluster specs; state is
// "new" on first start and "existing" on a restart from its data dir.
// Short ticks keep elections (and so the failure tests) quick.
func startMember(me memberSpec, specs []memberSpec) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = me.Name
	cfg.Dir = me.Dir
	pu, _ := url.Parse(me.peerURL())
	cu, _ := url.Parse(me.clientURL())
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.InitialCluster = initialCluster(specs)
	cfg.InitialClusterToken = "lastseen-test"
	cfg.ClusterState = embed.ClusterStateFlagNew
	if _, err := os.Stat(me.Dir + "/member"); err == nil {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	cfg.TickMs, cfg.ElectionMs = 50, 500
	// Clients ping every second (see clientConfig); the default minimum
	// of 5 s would answer them with GOAWAY.
	cfg.GRPCKeepAliveMinTime = 500 * time.Millisecond
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	return embed.StartEtcd(cfg)
}

func waitReady(e *embed.Etcd, d time.Duration) error {
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return err
	case <-time.After(d):
		return fmt.Errorf("etcd member %s not ready after %v", e.Config().Name, d)
	}
}

// clientConfig is a client of eps with keepalive pings, as README.md
// recommends (gRPC raises the 1 s asked for here to its minimum of 10 s).
func clientConfig(eps []string) clientv3.Config {
	return clientv3.Config{
		Endpoints: eps, DialTimeout: 5 * time.Second,
		DialKeepAliveTime: time.Second, DialKeepAliveTimeout: time.Second,
		// Its retry warnings (members killed on purpose) would drown the
		// test output.
		Logger: zap.NewNop(),
	}
}

func newClient(t testing.TB, eps []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientConfig(eps))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
