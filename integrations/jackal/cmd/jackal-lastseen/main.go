// Command jackal-lastseen is the jackal XMPP server (v0.64.0) with the
// lastseen module, assembled from jackal's exported packages.
//
// jackal has no public way to add a module: its module table and the
// fields of its Jackal type are unexported. Rather than fork it or patch a
// vendored copy, this command builds the same subsystems jackal's own
// main does, through their exported constructors, and adds the lastseen
// module to the module list. It reads jackal's YAML configuration (the
// jackal.Config type) plus a lastseen section:
//
//	lastseen:
//	  engine: native   # native (store.OpenSharded), wasm (wazerohost.OpenDurable) or none
//	  shards: 0        # 0 means the core's default
//
// What it leaves out of jackal's main: clustering (only the standalone
// "none" cluster type is accepted), external components, and the HTTP
// metrics server, which jackal binds to all interfaces.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	kitlog "github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/kkyr/fig"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/integrations/jackal/lsjackal"
	"github.com/lastseen-xmpp/lastseen/store"
	adminserver "github.com/ortuman/jackal/pkg/admin/server"
	"github.com/ortuman/jackal/pkg/auth/pepper"
	"github.com/ortuman/jackal/pkg/c2s"
	clusterconnmanager "github.com/ortuman/jackal/pkg/cluster/connmanager"
	"github.com/ortuman/jackal/pkg/cluster/kv"
	"github.com/ortuman/jackal/pkg/cluster/memberlist"
	"github.com/ortuman/jackal/pkg/cluster/resourcemanager"
	clusterrouter "github.com/ortuman/jackal/pkg/cluster/router"
	"github.com/ortuman/jackal/pkg/component"
	"github.com/ortuman/jackal/pkg/hook"
	"github.com/ortuman/jackal/pkg/host"
	"github.com/ortuman/jackal/pkg/jackal"
	"github.com/ortuman/jackal/pkg/log"
	"github.com/ortuman/jackal/pkg/module"
	"github.com/ortuman/jackal/pkg/module/offline"
	"github.com/ortuman/jackal/pkg/module/roster"
	"github.com/ortuman/jackal/pkg/module/xep0012"
	"github.com/ortuman/jackal/pkg/module/xep0030"
	"github.com/ortuman/jackal/pkg/module/xep0049"
	"github.com/ortuman/jackal/pkg/module/xep0054"
	"github.com/ortuman/jackal/pkg/module/xep0092"
	"github.com/ortuman/jackal/pkg/module/xep0115"
	"github.com/ortuman/jackal/pkg/module/xep0191"
	"github.com/ortuman/jackal/pkg/module/xep0198"
	streamqueue "github.com/ortuman/jackal/pkg/module/xep0198/queue"
	"github.com/ortuman/jackal/pkg/module/xep0199"
	"github.com/ortuman/jackal/pkg/module/xep0202"
	"github.com/ortuman/jackal/pkg/module/xep0280"
	"github.com/ortuman/jackal/pkg/module/xep0313"
	"github.com/ortuman/jackal/pkg/router"
	"github.com/ortuman/jackal/pkg/s2s"
	"github.com/ortuman/jackal/pkg/shaper"
	"github.com/ortuman/jackal/pkg/storage"
	"github.com/ortuman/jackal/pkg/storage/repository"
)

// Config is the lastseen section of the configuration file.
type Config struct {
	// Engine selects the presence machine: "native" (store.OpenSharded),
	// "wasm" (lastseen.wasm on bindings/go), or "none" for jackal without
	// lastseen.
	Engine string `fig:"engine" default:"native"`
	// Shards is core.NewSharded's shard count; 0 means its default.
	Shards int `fig:"shards"`
	// Data is the directory that keeps presence history across restarts
	// (package store: journal and snapshots), relative to the directory
	// the server starts in.
	Data string `fig:"data" default:"lastseen-data"`
	// ProbeBurst and ProbePer set the client probe limit (core.RateLimit:
	// a bucket of ProbeBurst probes refilled every ProbePer); zero means
	// core.DefaultRateLimit.
	ProbeBurst int           `fig:"probe_burst"`
	ProbePer   time.Duration `fig:"probe_per"`
}

type fileConfig struct {
	Lastseen Config `fig:"lastseen"`
}

// service is a subsystem started at boot and stopped, in reverse order, at
// shutdown.
type service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

func main() {
	cfgPath := flag.String("config", "config.yaml", "configuration file (jackal's YAML plus a lastseen section)")
	flag.Parse()
	if err := run(*cfgPath); err != nil {
		fmt.Fprintln(os.Stderr, "jackal-lastseen:", err)
		os.Exit(1)
	}
}

func load(path string, into any) error {
	return fig.Load(into, fig.File(filepath.Base(path)), fig.Dirs(filepath.Dir(path)))
}

func run(cfgPath string) error {
	var cfg jackal.Config
	if err := load(cfgPath, &cfg); err != nil {
		return err
	}
	var lcfg fileConfig
	if err := load(cfgPath, &lcfg); err != nil {
		return err
	}
	if cfg.Cluster.IsEnabled() {
		return errors.New("only the standalone cluster type \"none\" is supported")
	}
	logger := log.NewDefaultLogger(cfg.Logger.Level, cfg.Logger.Format)

	srv, err := assemble(&cfg, &lcfg.Lastseen, logger)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = srv.start(ctx)
	cancel()
	if err != nil {
		return err
	}
	level.Info(logger).Log("msg", "jackal-lastseen started", "engine", lcfg.Lastseen.Engine)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	level.Info(logger).Log("msg", "stopping", "signal", (<-sig).String())

	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.stop(ctx)
}

type server struct{ services []service }

func (s *server) add(svc service) { s.services = append(s.services, svc) }

func (s *server) start(ctx context.Context) error {
	for _, svc := range s.services {
		if err := svc.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) stop(ctx context.Context) error {
	var errs []error
	for i := len(s.services) - 1; i >= 0; i-- {
		errs = append(errs, s.services[i].Stop(ctx))
	}
	return errors.Join(errs...)
}

// deps is what the modules' constructors take.
type deps struct {
	cfg     *jackal.Config
	router  router.Router
	hosts   *host.Hosts
	resMng  resourcemanager.Manager
	rep     repository.Repository
	hk      *hook.Hooks
	comps   *component.Components
	connMng *clusterconnmanager.Manager
	logger  kitlog.Logger
}

// jackalModule builds one of jackal's own modules by name, with the same
// arguments as jackal's module table; ok is false for an unknown name.
func jackalModule(name string, d *deps) (m module.Module, ok bool) {
	switch name {
	case roster.ModuleName:
		return roster.New(d.router, d.hosts, d.resMng, d.rep, d.hk, d.logger), true
	case offline.ModuleName:
		return offline.New(d.cfg.Modules.Offline, d.router, d.hosts, d.rep, d.hk, d.logger), true
	case xep0012.ModuleName:
		return xep0012.New(d.router, d.hosts, d.resMng, d.rep, d.hk, d.logger), true
	case xep0030.ModuleName:
		return xep0030.New(d.router, d.comps, d.rep, d.resMng, d.hk, d.logger), true
	case xep0049.ModuleName:
		return xep0049.New(d.router, d.rep, d.hk, d.logger), true
	case xep0054.ModuleName:
		return xep0054.New(d.router, d.rep, d.hk, d.logger), true
	case xep0092.ModuleName:
		return xep0092.New(d.cfg.Modules.Version, d.router, d.logger), true
	case xep0115.ModuleName:
		return xep0115.New(d.router, d.rep, d.hk, d.logger), true
	case xep0191.ModuleName:
		return xep0191.New(d.router, d.hosts, d.resMng, d.rep, d.hk, d.logger), true
	case xep0198.ModuleName:
		return xep0198.New(d.cfg.Modules.Stream, streamqueue.NewQueueMap(), d.connMng, d.router, d.hosts, d.resMng, d.hk, d.logger), true
	case xep0199.ModuleName:
		return xep0199.New(d.cfg.Modules.Ping, d.router, d.hk, d.logger), true
	case xep0202.ModuleName:
		return xep0202.New(d.router, d.logger), true
	case xep0280.ModuleName:
		return xep0280.New(d.router, d.hosts, d.resMng, d.hk, d.logger), true
	case xep0313.ModuleName:
		return xep0313.New(d.cfg.Modules.Mam, d.router, d.hosts, d.rep, d.hk, d.logger), true
	}
	return nil, false
}

// defaultModules returns jackal's default module list (all of the above but
// XEP-0202, as in jackal).
func defaultModules() []string {
	return []string{
		roster.ModuleName, offline.ModuleName, xep0012.ModuleName, xep0030.ModuleName,
		xep0049.ModuleName, xep0054.ModuleName, xep0092.ModuleName, xep0115.ModuleName,
		xep0191.ModuleName, xep0198.ModuleName, xep0199.ModuleName, xep0280.ModuleName,
		xep0313.ModuleName,
	}
}

// engineService stops a durable engine after the modules that feed it, so
// that the records of their last calls reach the disk.
type engineService struct{ shutdown func() error }

func (e engineService) Start(context.Context) error { return nil }
func (e engineService) Stop(context.Context) error  { return e.shutdown() }

// newEngine builds the presence machine the configuration asks for, and
// the service that shuts it down; nil for "none" (not "off", which YAML
// reads as false), which runs jackal as it is (for comparisons).
func newEngine(lcfg *Config, domains []string, auth *lsjackal.Authorizer, logger kitlog.Logger) (lsjackal.Engine, service, error) {
	cfg := core.Config{Served: domains, Auth: auth}
	if lcfg.ProbeBurst != 0 || lcfg.ProbePer != 0 {
		cfg.ProbeLimit = core.RateLimit{Burst: lcfg.ProbeBurst, Per: lcfg.ProbePer}
	}
	switch lcfg.Engine {
	case "native", "":
		// store.OpenSharded applies the restart rule: a session that was
		// online when the server stopped comes back unavailable, with the
		// stamp of its last change.
		d, err := store.OpenSharded(lcfg.Data, cfg, lcfg.Shards, store.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("lastseen.data %q: %w", lcfg.Data, err)
		}
		r := d.Recovery()
		level.Info(logger).Log("msg", "lastseen store opened", "dir", lcfg.Data, "generation", r.Generation,
			"records", r.Records, "torn_bytes", r.TornBytes, "took_offline", r.TookOffline)
		return d, engineService{shutdown: d.Shutdown}, nil
	case "wasm":
		// One instance behind a mutex, journaled by package store in the
		// same directory format as the native engine's (see
		// lsjackal.WASMEngine).
		cfg.Auth = nil // the guest is told the facts (lsjackal.WASMEngine)
		w, err := lsjackal.OpenWASM(context.Background(), cfg, auth, lcfg.Data, logger)
		if err != nil {
			return nil, nil, err
		}
		return w, engineService{shutdown: w.Shutdown}, nil
	case "none":
		return nil, nil, nil
	}
	return nil, nil, fmt.Errorf("lastseen.engine %q: want \"native\", \"wasm\" or \"off\"", lcfg.Engine)
}

// assemble builds jackal's subsystems in the order its own main does
// (cluster bookkeeping, storage, hosts, routers, components, modules,
// admin, listeners), with the lastseen module first among the modules.
func assemble(cfg *jackal.Config, lcfg *Config, logger kitlog.Logger) (*server, error) {
	srv := &server{}
	peppers, err := pepper.NewKeys(cfg.Peppers)
	if err != nil {
		return nil, err
	}
	hk := hook.NewHooks()
	nopKV := kv.NewNop()
	memberList := memberlist.NewKVMemberList(cfg.Cluster.Server.Port, nopKV, hk, logger)
	resMng := resourcemanager.NewKVManager(nopKV, hk, logger)
	connMng := clusterconnmanager.NewManager(hk, logger)
	srv.add(connMng)
	srv.add(resMng)
	srv.add(memberList)

	rep, err := storage.New(cfg.Storage, logger)
	if err != nil {
		return nil, err
	}
	srv.add(rep)

	hosts, err := host.NewHosts(cfg.Hosts)
	if err != nil {
		return nil, err
	}
	var shapers shaper.Shapers
	for _, sc := range cfg.Shapers {
		shp, err := shaper.New(sc)
		if err != nil {
			return nil, err
		}
		shapers = append(shapers, shp)
	}
	s2sOut := s2s.NewOutProvider(cfg.S2S.Out, hosts, nopKV, shapers, hk, logger)
	srv.add(s2sOut)

	c2sRouter := c2s.NewRouter(c2s.NewLocalRouter(hosts), clusterrouter.New(connMng), resMng, rep, hk, logger)
	rt := router.New(hosts, c2sRouter, s2s.NewRouter(s2sOut))
	srv.add(rt)

	comps := component.NewComponents(nil, hk, logger)
	srv.add(comps)

	var domains []string
	for _, h := range cfg.Hosts {
		domains = append(domains, h.Domain)
	}
	eng, engSvc, err := newEngine(lcfg, domains, lsjackal.NewAuthorizer(rep, logger), logger)
	if err != nil {
		return nil, err
	}
	if engSvc != nil {
		srv.add(engSvc) // before the modules: stopped after them
	}
	d := &deps{cfg: cfg, router: rt, hosts: hosts, resMng: resMng, rep: rep, hk: hk, comps: comps, connMng: connMng, logger: logger}
	var mods []module.Module
	if eng != nil {
		mods = append(mods, lsjackal.New(eng, domains, rt, hk, nil, logger))
	}
	enabled := cfg.Modules.Enabled
	if len(enabled) == 0 {
		enabled = defaultModules()
	}
	for _, name := range enabled {
		if name == lsjackal.ModuleName {
			continue // on unless the engine is "none", and first
		}
		if name == xep0012.ModuleName && eng != nil {
			// lastseen answers Last Activity from its own state; jackal's
			// module would answer the same queries from another record.
			level.Info(logger).Log("msg", "jackal's last activity module replaced by lastseen", "module", name)
			continue
		}
		m, ok := jackalModule(name, d)
		if !ok {
			return nil, fmt.Errorf("unknown module %q", name)
		}
		mods = append(mods, m)
	}
	mm := module.NewModules(mods, hosts, rt, hk, logger)
	srv.add(mm)

	srv.add(adminserver.New(cfg.Admin, rep, peppers, hk, logger))

	for _, ln := range c2s.NewListeners(cfg.C2S.Listeners, hosts, rt, comps, mm, resMng, rep, peppers, shapers, hk, logger) {
		srv.add(ln)
	}
	if len(cfg.S2S.Listeners) > 0 {
		inHub := s2s.NewInHub(logger)
		srv.add(inHub)
		for _, ln := range s2s.NewListeners(cfg.S2S.Listeners, hosts, rt, comps, mm, s2sOut, inHub, nopKV, shapers, hk, logger) {
			srv.add(ln)
		}
	}
	return srv, nil
}
