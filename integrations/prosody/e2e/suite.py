#!/usr/bin/python3
"""End-to-end suite for mod_lastseen: starts its own Prosody on 127.0.0.1
(own config, data dir, pid file, free port), drives it with slixmpp and
prints one line per step, then "N passed, N failed".

    suite.py --repo DIR [--stock]

--stock runs the same steps against Prosody without mod_lastseen (its own
probe answering and mod_lastactivity); the expectations are lastseen's, so
the failures show where stock Prosody differs. Every wait is bounded.
"""
import argparse
import asyncio
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import slixmpp

WAIT = 5.0  # seconds: the bound of every wait for a stanza
REMOTE = "remote.test"  # the other server's domain (s2s cases); .test never leaves the resolver
COMPACT = 3  # lastseen_compact_after in the suite: the journal is folded into a snapshot many times a run
NETNS = "LASTSEEN_E2E_NETNS"
# The trap case: guest memory bounded, and SIGUSR2 makes the guest run out
# of it (an option for tests only, see mod_lastseen.lua).
TRAP_CONFIG = "lastseen_max_memory = 64 * 1024 * 1024\nlastseen_test_faults = true"  # "inside" once the suite runs in its own network namespace
QUIET = 1.5  # seconds: how long "nothing arrives" is watched


def free_port(addr="127.0.0.1"):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


class Server:
    """A Prosody of our own, stopped by its PID. With s2s it also listens
    on addr:5269 (the port other servers find by the domain's address) and
    resolves the names in hosts (a file of its own, given to Prosody's
    resolver by its unbound option): only inside the suite's own network
    namespace, where that port and those addresses are the suite's."""

    def __init__(self, repo, stock, limit="{ burst = 5, per = 60 }", template=None,
                 domain="localhost", addr="127.0.0.1", s2s=False, hosts="", extra=""):
        self.dir = tempfile.mkdtemp(prefix="lastseen-prosody-")
        self.domain, self.addr = domain, addr
        self.port = free_port(addr)
        here = os.path.dirname(os.path.abspath(__file__))
        cfg = open(template or os.path.join(here, "prosody.cfg.lua.in")).read()
        s2s_cfg = "s2s_ports = { }"
        if s2s:
            with open(os.path.join(self.dir, "hosts"), "w") as f:
                f.write(hosts)
            s2s_cfg = ('s2s_ports = { 5269 }\ns2s_interfaces = { "@ADDR@" }\n'
                       's2s_require_encryption = false\ns2s_secure_auth = false\n'
                       'unbound = { hoststxt = "@DIR@/hosts" }')
        cfg = cfg.replace("@S2S@", s2s_cfg).replace("@EXTRA@", extra)
        for k, v in {"@DIR@": self.dir, "@PORT@": str(self.port), "@ADDR@": addr, "@DOMAIN@": domain,
                     "@PLUGINS@": os.path.dirname(here),
                     "@BINDING@": os.path.join(repo, "bindings/lua"),
                     "@LOGLEVEL@": os.environ.get("LASTSEEN_E2E_LOG", "info"),
                     "@LIMIT@": limit,
                     "@LASTSEEN@": "" if stock else '"lastseen"'}.items():
            cfg = cfg.replace(k, v)
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        with open(self.cfg, "w") as f:
            f.write(cfg)
        os.makedirs(os.path.join(self.dir, "data"))
        self.proc = None

    def register(self, user, password):
        subprocess.run(["prosodyctl", "--config", self.cfg, "register", user, self.domain, password],
                       check=True, timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def write_store(self, store, user, lua):
        """Prosody's internal storage file for user (rosters, block lists)."""
        # Prosody's file names escape every non-alphanumeric byte as %xx.
        esc = lambda n: re.sub(r"\W", lambda m: "%%%02x" % ord(m.group(0)), n)
        d = os.path.join(self.dir, "data", esc(self.domain), store)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, esc(user) + ".dat"), "w") as f:
            f.write("return " + lua + ";\n")

    def start(self):
        # A server still listening here (one that did not stop) would
        # answer in the new one's place: refuse to go on.
        try:
            socket.create_connection((self.addr, self.port), timeout=0.5).close()
            raise RuntimeError("port %d still in use: the previous Prosody did not stop" % self.port)
        except OSError:
            pass
        cmd = ["prosody", "--config", self.cfg, "-F"]
        user = os.environ.get("LASTSEEN_E2E_USER")
        if user:  # as Debian's unit runs it: an unprivileged user
            subprocess.run(["chown", "-R", user, self.dir], check=True, timeout=30)
            # setpriv execs prosody in place: the PID stays prosody's own.
            cmd = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups"] + cmd
        self.proc = subprocess.Popen(cmd,
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr"), "w"))
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("prosody exited: " + self.log_tail())
            try:
                socket.create_connection((self.addr, self.port), timeout=0.5).close()
                try:  # the snapshot written at start (the compaction case)
                    self.snapshot_ino = os.stat(os.path.join(self.dir, "data", "lastseen", self.domain + ".snapshot")).st_ino
                except OSError:
                    self.snapshot_ino = None
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("prosody did not listen in 30 s: " + self.log_tail())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def crash(self):
        """SIGKILL: no server-stopping, no snapshot; only what is on disk."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)
        self.proc = None

    def log_tail(self):
        out = ""
        for name in ("stderr", "prosody.log"):
            try:
                out += open(os.path.join(self.dir, name)).read()[-3000:]
            except OSError:
                pass
        return out

    def cleanup(self):
        self.stop()
        if not os.environ.get("LASTSEEN_E2E_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that records every stanza it receives as XML text."""

    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.inbox = []
        self.started = asyncio.Event()
        self.arrived = asyncio.Event()
        self.add_event_handler("session_start", self._start)
        self.add_filter("in", self._record)
        self["feature_mechanisms"].unencrypted_plain = True

    def _record(self, stanza):
        self.inbox.append(str(stanza))
        self.arrived.set()
        return stanza

    async def _start(self, _):
        self.started.set()

    async def online(self, addr, port):
        self.connect(address=(addr, port), disable_starttls=True, force_starttls=False)
        await asyncio.wait_for(self.started.wait(), WAIT * 2)

    async def wait(self, pred, timeout=WAIT, count=1, since=0):
        """The received stanzas (from index since) matching pred, once
        there are count of them or timeout has passed."""
        deadline = time.monotonic() + timeout
        got, seen = [], since
        while True:
            # No await between reading the inbox and clearing the event:
            # a stanza recorded after this check sets it again.
            got += [s for s in self.inbox[seen:] if pred(s)]
            seen = len(self.inbox)
            left = deadline - time.monotonic()
            if len(got) >= count or left <= 0:
                return got
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def quiet(self, pred):
        await asyncio.sleep(QUIET)
        return [s for s in self.inbox if pred(s)]


def attr(s, name):
    m = re.search(r"\s%s=['\"]([^'\"]*)['\"]" % name, s.split(">", 1)[0])
    return m.group(1) if m else None


def answer_to(pid):
    return lambda s: s.startswith("<presence") and attr(s, "id") == pid and attr(s, "type") != "probe"


def has_delay(s):
    return "urn:xmpp:delay" in s and "stamp=" in s


class Suite:
    def __init__(self, server):
        self.server = server
        self.passed = self.failed = self.skipped = 0
        self.n = 0

    def check(self, name, ok, detail):
        self.n += 1
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print("%-4s %-16s %s" % ("ok" if ok else "FAIL", name, detail), flush=True)

    def pid(self):
        self.n += 1
        return "p%d" % self.n

    async def probe(self, frm, to, count=1, timeout=WAIT):
        pid = self.pid()
        mark = len(frm.inbox)
        frm.send_raw("<presence type='probe' to='%s' id='%s'/>" % (to, pid))
        got = await frm.wait(answer_to(pid), timeout, count)
        if got:
            return got
        # An answer without the probe's id (stock Prosody's) still counts
        # as the answer: a presence from the probed JID after the probe.
        return [s for s in frm.inbox[mark:] if s.startswith("<presence") and attr(s, "from") == to]


async def comes_and_goes(srv, user, resource, on, off, pause=0.5):
    """user logs in as resource, is available with status on, unavailable
    with status off, and disconnects, with pause seconds after each."""
    c = await login(srv, user, resource)
    c.send_raw("<presence><status>%s</status></presence>" % on)
    await asyncio.sleep(pause)
    c.send_raw("<presence type='unavailable'><status>%s</status></presence>" % off)
    await asyncio.sleep(pause)
    c.disconnect()
    await asyncio.sleep(pause)


async def query_last(suite, frm, to):
    """Sends a Last Activity get from frm to to; the answers to it."""
    iq = suite.pid()
    frm.send_raw("<iq type='get' to='%s' id='%s'><query xmlns='jabber:iq:last'/></iq>" % (to, iq))
    return await frm.wait(lambda s: s.startswith("<iq") and attr(s, "id") == iq)


def last_seconds(got):
    """The seconds of got if it is one Last Activity result, else None."""
    if len(got) != 1 or attr(got[0], "type") != "result" or "jabber:iq:last" not in got[0]:
        return None
    v = attr(got[0].split("<query", 1)[1], "seconds")
    return int(v) if v and v.isdigit() else None


def compactions(srv):
    """How many times the module folded its journal into a snapshot while
    running (its log lines), whether the snapshot file is a new one since
    the server started (each is renamed over the last), and how many
    records the journal holds now (None: no journal, stock Prosody)."""
    log = open(os.path.join(srv.dir, "prosody.log")).read()
    folds = len(re.findall(r"lastseen: compacted \(threshold\)", log))
    base = os.path.join(srv.dir, "data", "lastseen", srv.domain)
    try:
        moved = os.stat(base + ".snapshot").st_ino != srv.snapshot_ino
        j = open(base + ".journal", "rb").read()
    except OSError:
        return folds, False, None
    n, i = 0, 0
    while i + 4 <= len(j):
        i += 4 + int.from_bytes(j[i:i + 4], "little")
        n += 1
    return folds, moved, n if i == len(j) else None


def show(stanzas):
    return " | ".join(re.sub(r"\sxmlns=['\"]jabber:client['\"]", "", s)[:200] for s in stanzas) or "(nothing)"


def populate(srv):
    for u in ("alice", "bob", "carol", "dave"):
        srv.register(u, "pw-" + u)
        # Rosters and bob's block list in Prosody's own storage.
    both = "{ subscription = 'both', groups = {} }"
    srv.write_store("roster", "alice", "{ [false] = { version = 1, pending = {} }, ['bob@localhost'] = %s, ['dave@localhost'] = %s }" % (both, both))
    # ann and mallory are users of the other server (the s2s cases):
    # mallory is blocked, eve is not in bob's roster at all.
    srv.write_store("roster", "bob", "{ [false] = { version = 1, pending = {} }, ['alice@localhost'] = %s, ['dave@localhost'] = %s, "
                    "['ann@%s'] = %s, ['mallory@%s'] = %s }" % (both, both, REMOTE, both, REMOTE, both))
    srv.write_store("roster", "dave", "{ [false] = { version = 1, pending = {} }, ['bob@localhost'] = %s, ['alice@localhost'] = %s }" % (both, both))
    srv.write_store("blocklist", "bob", "{ [false] = { created = 0 }, ['dave@localhost'] = true, ['mallory@%s'] = true }" % REMOTE)


def populate_remote(srv):
    """The other server's users: ann (bob's contact), eve (who believes she
    is subscribed to bob: her roster says to, bob's has nothing) and
    mallory (blocked by bob)."""
    for u in ("ann", "eve", "mallory"):
        srv.register(u, "pw-" + u)
    item = lambda sub: "{ [false] = { version = 1, pending = {} }, ['bob@localhost'] = { subscription = '%s', groups = {} } }" % sub
    srv.write_store("roster", "ann", item("both"))
    srv.write_store("roster", "eve", item("to"))
    srv.write_store("roster", "mallory", item("both"))


async def figures(args):
    """Probe round trip (100 sequential probes of an offline contact) and a
    200-probe burst, through the whole server; no probe limit in the way."""
    srv = Server(args.repo, args.stock, "{ burst = 100000, per = 1 }")
    try:
        populate(srv)
        srv.start()
        bob = await login(srv, "bob", "r1")
        bob.send_raw("<presence><status>here</status></presence>")
        bob.send_raw("<presence type='unavailable'><status>gone</status></presence>")
        await asyncio.sleep(0.5)
        bob.disconnect()
        alice = await login(srv, "alice", "desk")
        answer = lambda s: s.startswith("<presence") and attr(s, "from") == "bob@localhost"
        rtts = []
        for i in range(110):
            mark = len(alice.inbox)
            t0 = time.perf_counter()
            alice.send_raw("<presence type='probe' to='bob@localhost' id='rt%d'/>" % i)
            got = await alice.wait(answer, WAIT, since=mark)
            if not got:
                raise RuntimeError("no answer to probe %d" % i)
            if i >= 10:  # the first ten warm up
                rtts.append(time.perf_counter() - t0)
        rtts.sort()
        mark = len(alice.inbox)
        t0 = time.perf_counter()
        for i in range(200):
            alice.send_raw("<presence type='probe' to='bob@localhost' id='b%d'/>" % i)
        got = await alice.wait(answer, WAIT * 6, 200, since=mark)
        burst = time.perf_counter() - t0
        rss = re.search(r"VmRSS:\s+(\d+) kB", open("/proc/%d/status" % srv.proc.pid).read())
        print("%s: probe round trip median %.2f ms, p90 %.2f ms (100 probes); 200-probe burst %.0f ms (%d answers); prosody RSS %.1f MB" % (
            "stock" if args.stock else "lastseen", rtts[50] * 1e3, rtts[90] * 1e3, burst * 1e3, len(got),
            int(rss.group(1)) / 1024 if rss else 0), flush=True)
        alice.disconnect()
        await asyncio.sleep(0.3)
    finally:
        srv.cleanup()
    return 0


async def main(args):
    if args.figures:
        return await figures(args)
    why = into_netns()
    hosts = "127.0.0.1 localhost\n127.0.0.2 %s\n" % REMOTE
    srv = Server(args.repo, args.stock, template=args.template, s2s=why is None, hosts=hosts,
                 extra="lastseen_compact_after = %d\n%s" % (COMPACT, TRAP_CONFIG))
    remote = None
    try:
        populate(srv)
        if why is None:
            # The other server: stock Prosody with its own domain and
            # address, so every s2s answer crosses two real servers.
            remote = Server(args.repo, True, domain=REMOTE, addr="127.0.0.2", s2s=True, hosts=hosts)
            populate_remote(remote)
            remote.start()
        srv.start()
        suite = Suite(srv)
        await run_steps(suite, srv, remote, why)
    except Exception as e:  # a crash of the harness is a failure, not a pass
        print("FAIL harness %r\n%s" % (e, srv.log_tail()[-2000:]), flush=True)
        suite = locals().get("suite") or Suite(srv)
        suite.failed += 1
    finally:
        srv.cleanup()
        if remote:
            remote.cleanup()
    print("%d passed, %d failed%s" % (suite.passed, suite.failed,
                                      ", %d skipped" % suite.skipped if suite.skipped else ""), flush=True)
    return 1 if suite.failed else 0


def into_netns():
    """Re-executes the suite in a network namespace of its own (loopback
    only; unshare --net as root), where port 5269 on 127.0.0.1 and
    127.0.0.2 is the suite's alone and no query leaves the machine. In
    there it brings loopback up and returns None; where that cannot be
    done, why not (the s2s cases then fail in CI and are skipped
    elsewhere)."""
    state = os.environ.get(NETNS)
    if state == "inside":
        loopback_up()
        return None
    if state:
        return state
    if os.geteuid() != 0:
        why = "not root"
    elif not shutil.which("unshare"):
        why = "no unshare command (util-linux)"
    else:
        r = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            os.environ[NETNS] = "inside"
            sys.stdout.flush()
            os.execvp("unshare", ["unshare", "--net", "--", sys.executable, os.path.abspath(sys.argv[0])] + sys.argv[1:])
        why = "unshare --net failed: " + ((r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1])
    os.environ[NETNS] = why
    return why


def loopback_up():
    """Sets lo up, as 'ip link set lo up' does (SIOCGIFFLAGS, SIOCSIFFLAGS),
    without needing iproute2: a new network namespace starts with it down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))  # IFF_UP


async def login(srv, user, resource):
    c = Client("%s@%s/%s" % (user, srv.domain, resource), "pw-" + user)
    await c.online(srv.addr, srv.port)
    return c


async def s2s_steps(suite, srv, remote):
    """Users of the other server (stock Prosody, remote.test) probe and
    query bob@localhost over s2s (dialback, no TLS): every answer is the
    lastseen server's, carried back by the other server to its client."""
    await comes_and_goes(srv, "bob", "train", "on the train", "off the train", 0.3)

    ann = await login(remote, "ann", "a")
    # The first stanza opens both s2s streams (and dialback): a longer wait.
    got = await suite.probe(ann, "bob@localhost", timeout=WAIT * 3)
    ok = len(got) == 1 and attr(got[0], "type") == "unavailable" and "off the train" in got[0] \
        and has_delay(got[0]) and "from=\"bob@localhost/train\"" in got[0].split("urn:xmpp:delay", 1)[-1]
    suite.check("s2s-offline", ok, show(got))

    got = await suite.probe(ann, "localhost")
    ok = len(got) == 1 and attr(got[0], "from") == "localhost" and attr(got[0], "type") is None \
        and has_delay(got[0]) and "from=\"localhost\"" in got[0].split("urn:xmpp:delay", 1)[-1]
    suite.check("s2s-domain", ok, show(got))

    bob = await login(srv, "bob", "train")
    bob.send_raw("<presence><status>back on the train</status></presence>")
    await asyncio.sleep(0.5)
    mark = len(ann.inbox)
    from_bob = lambda s: s.startswith("<presence") and attr(s, "from") == "bob@localhost/train" \
        and attr(s, "type") is None and s in ann.inbox[mark:]
    ann.send_raw("<presence type='probe' to='bob@localhost' id='%s'/>" % suite.pid())
    await ann.wait(from_bob, WAIT)
    await asyncio.sleep(0.5)
    got = [s for s in ann.inbox[mark:] if from_bob(s)]
    ok = len(got) == 1 and "back on the train" in got[0] and has_delay(got[0])
    suite.check("s2s-online", ok, show(got))

    eve = await login(remote, "eve", "e")
    # A roster get makes eve's session one that her server tells about
    # subscription changes (RFC 6121 2.1.6: an interested resource): the
    # unsubscribed answer reaches her as such a change.
    eve.send_raw("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>")
    await eve.wait(lambda s: attr(s, "id") == "roster1")
    pid = suite.pid()
    mark = len(eve.inbox)
    eve.send_raw("<presence type='probe' to='bob@localhost' id='%s'/>" % pid)
    got = await eve.wait(lambda s: s.startswith("<presence") and attr(s, "from") == "bob@localhost", since=mark)
    ok = len(got) == 1 and attr(got[0], "type") == "unsubscribed"
    suite.check("s2s-unauthorised", ok, show(got))

    mallory = await login(remote, "mallory", "m")
    mark = len(mallory.inbox)
    mallory.send_raw("<presence type='probe' to='bob@localhost' id='%s'/>" % suite.pid())
    mallory.send_raw("<iq type='get' to='bob@localhost' id='%s'><query xmlns='jabber:iq:last'/></iq>" % suite.pid())
    await asyncio.sleep(QUIET)
    got = [s for s in mallory.inbox[mark:] if "bob@localhost" in (attr(s, "from") or "")
           and (s.startswith("<presence") or attr(s, "type") == "result")]
    suite.check("s2s-blocked", got == [], show(got))

    bob.send_raw("<presence type='unavailable'><status>off again</status></presence>")
    await asyncio.sleep(0.5)
    bob.disconnect()
    got = await query_last(suite, ann, "bob@localhost")
    ok = last_seconds(got) is not None and "off again" in got[0]
    suite.check("s2s-last-activity", ok, show(got))

    got = await query_last(suite, ann, "localhost")
    suite.check("s2s-uptime", (last_seconds(got) or 0) >= 1, show(got))
    for c in (ann, eve, mallory):
        c.disconnect()


async def trap_steps(suite, srv):
    """The guest traps inside the running server (SIGUSR2 with the test-only
    lastseen_test_faults: it runs out of its lastseen_max_memory); the
    binding restarts it empty and the module replays snapshot and journal.
    Nothing acknowledged before the trap may be lost: an offline user's last
    presence, a session still connected (its later unavailable must be
    taken, not refused as unknown), and the machine answers on."""
    await comes_and_goes(srv, "bob", "t2", "on before the trap", "left before the trap", 0.3)
    dave = await login(srv, "dave", "t1")
    dave.send_raw("<presence><status>through the trap</status></presence>")
    await asyncio.sleep(0.5)

    log = os.path.join(srv.dir, "prosody.log")
    before = open(log).read().count("state replayed from disk")
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGUSR2)
    deadline = t0 + WAIT * 3
    text = ""
    while time.monotonic() < deadline:
        text = open(log).read()
        if text.count("state replayed from disk") > before:
            break
        await asyncio.sleep(0.05)
    took = time.monotonic() - t0
    replayed = re.findall(r"state replayed from disk \(\d+ records\)", text)[before:]
    trapped = "WebAssembly instance trapped" in text
    alive = srv.proc.poll() is None
    alice = await login(srv, "alice", "desk5")
    got = await suite.probe(alice, "bob@localhost")
    ok = trapped and len(replayed) == 1 and alive and len(got) == 1 and attr(got[0], "type") == "unavailable" \
        and "left before the trap" in got[0] and "bob@localhost/t2" in got[0] and has_delay(got[0])
    suite.check("trap", ok, "trapped: %s; %s within %.1f s of SIGUSR2; prosody running: %s; %s" % (
        trapped, replayed[0] if replayed else "no replay", took, alive, show(got)))

    mark = len(alice.inbox)
    alice.send_raw("<presence type='probe' to='dave@localhost' id='%s'/>" % suite.pid())
    from_dave = lambda s: s.startswith("<presence") and attr(s, "from") == "dave@localhost/t1" and s in alice.inbox[mark:]
    got = await alice.wait(from_dave, WAIT)
    ok = len(got) == 1 and attr(got[0], "type") is None and "through the trap" in got[0]
    suite.check("trap-online", ok, show(got))

    dave.send_raw("<presence type='unavailable'><status>left after the trap</status></presence>")
    await asyncio.sleep(0.5)
    got = await suite.probe(alice, "dave@localhost")
    ok = len(got) == 1 and attr(got[0], "type") == "unavailable" and "left after the trap" in got[0] \
        and "dave@localhost/t1" in got[0] and has_delay(got[0])
    suite.check("trap-after", ok, show(got))
    for c in (alice, dave):
        c.disconnect()


async def run_steps(suite, srv, remote, s2s_why):
    alice = await login(srv, "alice", "desk")
    await comes_and_goes(srv, "bob", "r1", "at work", "gone fishing")

    got = await suite.probe(alice, "bob@localhost")
    ok = len(got) == 1 and attr(got[0], "type") == "unavailable" and "gone fishing" in got[0] and has_delay(got[0])
    suite.check("offline", ok, show(got))

    r1 = await login(srv, "bob", "r1")
    r2 = await login(srv, "bob", "r2")
    r1.send_raw("<presence><status>one</status></presence>")
    r2.send_raw("<presence><status>two</status></presence>")
    await asyncio.sleep(0.5)
    # Answers for online resources are their presence (RFC 6121 4.3.2),
    # which carries no probe id: every presence from bob after the probe.
    mark = len(alice.inbox)
    from_bob = lambda s: s.startswith("<presence") and (attr(s, "from") or "").startswith("bob@localhost/") \
        and attr(s, "type") is None and s in alice.inbox[mark:]
    alice.send_raw("<presence type='probe' to='bob@localhost' id='%s'/>" % suite.pid())
    await alice.wait(from_bob, WAIT, 2)
    await asyncio.sleep(0.5)
    got = [s for s in alice.inbox[mark:] if from_bob(s)]
    froms = sorted(attr(s, "from") or "" for s in got)
    ok = froms == ["bob@localhost/r1", "bob@localhost/r2"] and all(has_delay(s) for s in got)
    suite.check("online", ok, show(got))

    mark = len(alice.inbox)
    alice.send_raw("<presence type='probe' to='bob@localhost/r2' id='%s'/>" % suite.pid())
    await alice.wait(from_bob, WAIT)
    await asyncio.sleep(0.5)
    got = [s for s in alice.inbox[mark:] if from_bob(s)]
    ok = len(got) == 1 and attr(got[0], "from") == "bob@localhost/r2"
    suite.check("full-jid", ok, show(got))

    got = await suite.probe(alice, "localhost")
    ok = len(got) == 1 and attr(got[0], "from") == "localhost" and attr(got[0], "type") is None and has_delay(got[0])
    suite.check("domain-uptime", ok, show(got))

    carol = await login(srv, "carol", "c")
    got = await suite.probe(carol, "bob@localhost")
    ok = len(got) == 1 and attr(got[0], "type") == "unsubscribed"
    suite.check("unauthorised", ok, show(got))

    pid = suite.pid()
    # Nested deeper than the machine's limit (32): refused as bad input.
    carol.send_raw("<presence type='probe' to='bob@localhost' id='%s'>%s%s</presence>" % (pid, "<x>" * 40, "</x>" * 40))
    got = await carol.wait(lambda s: attr(s, "id") == pid)
    ok = len(got) == 1 and attr(got[0], "type") == "error" and "bad-request" in got[0]
    suite.check("bad-probe", ok, show(got))

    dave = await login(srv, "dave", "d")
    pid = suite.pid()
    dave.send_raw("<presence type='probe' to='bob@localhost' id='%s'/>" % pid)
    got = await dave.quiet(answer_to(pid))
    suite.check("blocked", got == [], show(got))

    ids = [suite.pid() for _ in range(8)]
    for i in ids:
        alice.send_raw("<presence type='probe' to='bob@localhost' id='%s'/>" % i)
    await asyncio.sleep(1.5)
    errors = [s for s in alice.inbox if attr(s, "id") in ids and attr(s, "type") == "error"]
    ok = len(errors) >= 1 and all("policy-violation" in e for e in errors)
    suite.check("flood", ok, "%d of 8 refused: %s" % (len(errors), show(errors[:1])))

    r1.disconnect()
    r2.disconnect()
    await asyncio.sleep(0.5)
    got = await query_last(suite, alice, "bob@localhost")
    ok = last_seconds(got) is not None and "two" not in got[0]
    suite.check("last-activity", ok, show(got))

    got = await query_last(suite, carol, "bob@localhost")
    ok = len(got) == 1 and attr(got[0], "type") == "error" and "forbidden" in got[0]
    suite.check("last-act-unauth", ok, show(got))

    got = await query_last(suite, alice, "localhost")
    suite.check("uptime-query", (last_seconds(got) or 0) >= 1, show(got))

    lost = await login(srv, "bob", "lost")
    lost.send_raw("<presence><status>about to vanish</status></presence>")
    await asyncio.sleep(0.5)
    lost.transport.abort()  # the TCP connection dies without unavailable presence
    await asyncio.sleep(1.0)
    # A fresh session: alice's has spent its probes on the flood.
    alice2 = await login(srv, "alice", "desk2")
    got = await suite.probe(alice2, "bob@localhost")
    ok = len(got) == 1 and attr(got[0], "type") == "unavailable" and has_delay(got[0]) \
        and "bob@localhost/lost" in got[0] and "Disconnected" not in got[0]
    suite.check("lost-session", ok, show(got))

    if remote:
        await s2s_steps(suite, srv, remote)
    elif os.environ.get("CI") == "true":
        suite.check("s2s", False, "no network namespace for the second server (%s): run the suite as root with unshare" % s2s_why)
    else:
        suite.skipped += 1
        print("skip s2s              no network namespace for the second server (%s)" % s2s_why, flush=True)

    await trap_steps(suite, srv)

    await comes_and_goes(srv, "bob", "r8", "last before the restart", "left before the restart")
    for c in (alice, alice2, carol, dave):
        c.disconnect()
    await asyncio.sleep(0.5)
    folds, snap_moved, tail = compactions(srv)
    ok = folds >= 3 and snap_moved and 0 <= tail < COMPACT
    suite.check("compaction", ok, "%d compactions at lastseen_compact_after = %d while running; snapshot replaced: %s; "
                "%s journal records since the last" % (folds, COMPACT, snap_moved, tail))
    srv.stop()
    srv.start()
    alice = await login(srv, "alice", "desk3")
    got = await suite.probe(alice, "bob@localhost")
    ok = len(got) == 1 and attr(got[0], "type") == "unavailable" and "left before the restart" in got[0] \
        and has_delay(got[0]) and "bob@localhost/r8" in got[0]
    # dave's last change came after the trap, several compactions earlier.
    got += await suite.probe(alice, "dave@localhost")
    ok = ok and len(got) == 2 and attr(got[1], "type") == "unavailable" and "left after the trap" in got[1] \
        and "dave@localhost/t1" in got[1]
    suite.check("restart", ok, show(got))

    # A crash: the journal, fsynced before each answer left, is all there is.
    bob = await login(srv, "bob", "r9")
    bob.send_raw("<presence><status>before the crash</status></presence>")
    bob.send_raw("<presence type='unavailable'><status>left before the crash</status></presence>")
    await asyncio.sleep(0.5)
    srv.crash()
    srv.start()
    alice = await login(srv, "alice", "desk4")
    got = await suite.probe(alice, "bob@localhost")
    ok = len(got) == 1 and attr(got[0], "type") == "unavailable" and "left before the crash" in got[0] \
        and has_delay(got[0]) and "bob@localhost/r9" in got[0]
    suite.check("crash", ok, show(got))
    alice.disconnect()
    await asyncio.sleep(0.3)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--repo", default=os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
    p.add_argument("--stock", action="store_true")
    p.add_argument("--template", help="a Prosody config template instead of prosody.cfg.lua.in (see debian-default.sh)")
    p.add_argument("--figures", action="store_true", help="measure round trip and burst instead of the steps")
    a = p.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    sys.exit(asyncio.run(main(a)))
