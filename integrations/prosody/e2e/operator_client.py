#!/usr/bin/python3
"""A new operator's smoke test of mod_lastseen on a running Prosody.

Usage: operator_client.py HOST PORT USER_A PASSWORD_A USER_B PASSWORD_B [--restarted SINCE]

Both users must exist on HOST (prosodyctl register). The script connects
to 127.0.0.1:PORT with slixmpp, makes A and B mutual contacts, logs B in
and out with the status "gone fishing", then as A probes B's bare JID
(expects `unavailable`, B's status and a urn:xmpp:delay stamp), asks B's
Last Activity (jabber:iq:last: the seconds since B left and the status),
probes the domain (expects its presence with a delay stamp: the server's
start) and asks the domain's Last Activity (its uptime).

With --restarted SINCE (an ISO 8601 UTC time taken just before the server
was restarted) it skips the subscription and B's session, and checks that
B's last presence from before SINCE is still answered and that the
domain's stamp and uptime count from after SINCE.

It prints each stanza it got and one `ok`/`FAIL` line per check, and exits
1 if any check failed. Every wait is bounded (10 s), the whole run by 60 s.

It is a smoke test for an installed server, not part of the e2e suite
(run.sh) and not run by .ci/run.
"""

import asyncio
import datetime
import sys
import xml.etree.ElementTree as ET

import slixmpp

WAIT = 10.0
DELAY = "{urn:xmpp:delay}delay"
LAST = "{jabber:iq:last}query"


def client(jid, password, port):
    c = slixmpp.ClientXMPP(jid, password)
    c.connected_fut = asyncio.get_event_loop().create_future()
    c.add_event_handler("session_start", lambda _: c.connected_fut.done() or c.connected_fut.set_result(True))
    c.add_event_handler("failed_auth", lambda _: c.connected_fut.done() or c.connected_fut.set_exception(RuntimeError("%s: authentication failed" % jid)))
    # A server on loopback, likely without a certificate for its domain:
    # no STARTTLS (the server must not require encryption).
    c.connect(address=("127.0.0.1", port), disable_starttls=True, force_starttls=False)
    return c


async def online(c):
    await asyncio.wait_for(c.connected_fut, WAIT)
    await asyncio.wait_for(c.get_roster(), WAIT)


def stamp_of(el):
    """Returns the urn:xmpp:delay stamp of el as a UTC datetime, or None."""
    d = el.find(DELAY)
    if d is None:
        return None
    # lastseen stamps carry nanoseconds; datetime takes microseconds.
    s = d.get("stamp").rstrip("Z")
    whole, _, frac = s.partition(".")
    t = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc)
    return t + datetime.timedelta(microseconds=int((frac + "000000")[:6]))


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


async def main(host, port, user_a, pw_a, user_b, pw_b, since=None):
    a_jid, a_bare, b_bare = "%s@%s/desk" % (user_a, host), "%s@%s" % (user_a, host), "%s@%s" % (user_b, host)
    results = []

    def check(name, ok, detail):
        results.append(ok)
        print("%s %s: %s" % ("ok  " if ok else "FAIL", name, detail))

    a = client(a_jid, pw_a, port)
    await online(a)
    got = asyncio.Queue()
    a.add_event_handler("presence", lambda p: got.put_nowait(p))

    async def answer(ident):
        while True:
            p = await asyncio.wait_for(got.get(), WAIT)
            if p["id"] == ident:
                print("   ", str(p))
                return p

    async def query(to):
        r = await a.make_iq_get(queryxmlns="jabber:iq:last", ito=to).send(timeout=WAIT)
        print("   ", str(r))
        q = ET.fromstring(str(r)).find(LAST)
        return int(q.get("seconds")), q.text or ""

    def probe(to, ident):
        p = a.make_presence(pto=to, ptype="probe")
        p["id"] = ident
        p.send()

    left = None
    if since is None:
        b = client(b_bare + "/phone", pw_b, port)
        await online(b)
        # Mutual subscription, as two clients make it: each sends
        # subscribe, and slixmpp approves the other's on its own.
        a.send_presence()
        b.send_presence()
        a.send_presence(pto=b_bare, ptype="subscribe")
        b.send_presence(pto=a_bare, ptype="subscribe")
        for _ in range(int(WAIT * 10)):
            if a.client_roster[b_bare]["subscription"] == "both" and b.client_roster[a_bare]["subscription"] == "both":
                break
            await asyncio.sleep(0.1)
        check("subscription", a.client_roster[b_bare]["subscription"] == "both",
              "A's roster item for B: %s" % a.client_roster[b_bare]["subscription"])

        # B goes online, then offline with a status, and disconnects.
        b.send_presence(pstatus="at my desk")
        await asyncio.sleep(0.5)
        left = utc_now()
        b.send_presence(ptype="unavailable", pstatus="gone fishing")
        await asyncio.sleep(0.5)
        await asyncio.wait_for(b.disconnect(), WAIT)
        await asyncio.sleep(2.5)

    # B's bare JID: the last unavailable presence, its status and stamp.
    probe(b_bare, "op-probe-b")
    try:
        p = await answer("op-probe-b")
        st = stamp_of(ET.fromstring(str(p)))
        when = st is not None and (abs((st - left).total_seconds()) < 2 if left else st < since)
        check("probe", p["type"] == "unavailable" and p["status"] == "gone fishing" and when,
              "type=%s status=%r delay=%s (%s)" % (p["type"], p["status"], st,
                                                   "B left at %s" % left.isoformat() if left else "before the restart"))
        left = left or st
    except asyncio.TimeoutError:
        check("probe", False, "no answer in %.0f s" % WAIT)

    # B's Last Activity: the seconds since B left, and the status.
    try:
        secs, text = await query(b_bare)
        ago = (utc_now() - left).total_seconds() if left else -1
        check("last-activity", left is not None and abs(secs - ago) <= 2 and text == "gone fishing",
              "seconds=%d (B left %.1f s ago), text=%r" % (secs, ago, text))
    except Exception as e:  # an error reply or a timeout
        check("last-activity", False, "%s: %s" % (type(e).__name__, e))

    # The domain: its presence stamped with the server's start, and the
    # uptime counting from then.
    probe(host, "op-probe-domain")
    try:
        p = await answer("op-probe-domain")
        st = stamp_of(ET.fromstring(str(p)))
        when = st is not None and (st > since if since else st < left)
        check("domain", p["type"] == "available" and when,
              "type=%s delay=%s (%s)" % (p["type"], st, "after the restart" if since else "before B left"))
    except asyncio.TimeoutError:
        check("domain", False, "no answer in %.0f s" % WAIT)
        st = None
    try:
        secs, _ = await query(host)
        up = (utc_now() - st).total_seconds() if st else -1
        check("uptime", st is not None and abs(secs - up) <= 2,
              "seconds=%d (the domain's stamp is %.1f s old)" % (secs, up))
    except Exception as e:
        check("uptime", False, "%s: %s" % (type(e).__name__, e))

    await asyncio.wait_for(a.disconnect(), WAIT)
    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    since = None
    if len(args) == 8 and args[6] == "--restarted":
        since = datetime.datetime.fromisoformat(args[7].replace("Z", "+00:00"))
        args = args[:6]
    if len(args) != 6:
        sys.exit(__doc__.strip().splitlines()[2])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        rc = loop.run_until_complete(asyncio.wait_for(main(args[0], int(args[1]), *args[2:], since=since), 60))
    finally:
        # slixmpp leaves each stream's filter task waiting: end them, so
        # that closing the loop does not complain about them.
        rest = asyncio.all_tasks(loop)
        for task in rest:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
    sys.exit(rc)
