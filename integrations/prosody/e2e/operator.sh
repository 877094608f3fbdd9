#!/bin/sh
# Tries mod_lastseen the way README.md installs it, without touching the
# system's Prosody: a copy of Debian's /etc/prosody/prosody.cfg.lua with the
# README's lines added where the README says (plugin_paths and
# modules_enabled extended, the options in the global section), plus what a
# private test server needs (its own data dir, pid file, log, a free c2s
# port on 127.0.0.1, no s2s or http ports, no TLS required). It checks the
# config with prosodyctl, starts `prosody --config FILE -F`, registers two
# users, runs operator_client.py (probe, Last Activity, domain), restarts
# the server and checks again, and stops it by its PID.
#
# Usage: sh integrations/prosody/e2e/operator.sh   (after bash bindings/lua/build.sh)
# Needs prosody, python3-slixmpp. A smoke test for operators; not run by .ci/run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)

for need in /usr/bin/prosody /usr/bin/prosodyctl /etc/prosody/prosody.cfg.lua; do
  [ -e "$need" ] || { echo "operator.sh: $need is missing (apt-get install prosody)" >&2; exit 1; }
done
/usr/bin/python3 -c 'import slixmpp' 2>/dev/null || { echo "operator.sh: no slixmpp (apt-get install python3-slixmpp)" >&2; exit 1; }
bash "$repo/bindings/lua/build.sh" -check || { echo "operator.sh: run bash bindings/lua/build.sh first" >&2; exit 1; }

t=$(mktemp -d)
pid=
stop() {
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  pid=
}
cleanup() { stop; [ "${KEEP:-}" ] && echo "kept $t" || rm -rf "$t"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cfg=$t/prosody.cfg.lua
mkdir -p "$t/data" "$t/certs"

# The README's lines, where it says to put them.
sed -e "s|^plugin_paths = { \(.*\) }|plugin_paths = { \1, \"$repo/integrations/prosody\" }\\
lastseen_binding_path = \"$repo/bindings/lua\"\\
lastseen_probe_limit = { burst = 10, per = 6 }|" \
    -e 's|^\(\s*\)"posix";\(.*\)$|\1"posix";\2\n\1"lastseen";|' \
    -e "s|^pidfile = .*|pidfile = \"$t/prosody.pid\"|" \
    -e "s|^log = {|log = { { levels = { min = \"info\" }, to = \"file\", filename = \"$t/prosody.log\" } } _log = {|" \
    -e 's|^Include .*||' /etc/prosody/prosody.cfg.lua > "$cfg"
# What a private test server needs, in the global section.
sed -i "1i run_as_root = true\\
data_path = \"$t/data\"\\
interfaces = { \"127.0.0.1\" }\\
c2s_ports = { $port }\\
s2s_ports = { }\\
http_ports = { }\\
https_ports = { }\\
c2s_require_encryption = false\\
allow_unencrypted_plain_auth = true" "$cfg"
grep -q '"lastseen";' "$cfg" && grep -q "^lastseen_binding_path" "$cfg" ||
  { echo "operator.sh: Debian's config no longer has the plugin_paths and \"posix\" lines this edits" >&2; exit 1; }

echo "== prosodyctl check config"
prosodyctl --config "$cfg" check config | tail -1

start() {
  prosody --config "$cfg" -F >"$t/stdout" 2>&1 &
  pid=$!
  i=0
  until grep -q "lastseen: answering probes" "$t/prosody.log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$pid" 2>/dev/null; then
      echo "operator.sh: mod_lastseen did not load within 30 s; the log says:" >&2
      grep -E "error|lastseen" "$t/prosody.log" "$t/stdout" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  grep "lastseen: answering probes" "$t/prosody.log" | tail -1
}

echo "== prosody --config $cfg -F (c2s on 127.0.0.1:$port)"
start
prosodyctl --config "$cfg" register alice localhost secret-alice
prosodyctl --config "$cfg" register bob localhost secret-bob

echo "== as alice: probe bob, his Last Activity, the domain"
/usr/bin/python3 "$here/operator_client.py" localhost "$port" alice secret-alice bob secret-bob

echo "== restart"
since=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ | sed 's/\([0-9]\{6\}\)[0-9]*Z$/\1+00:00/')
stop
: >"$t/prosody.log"
start
/usr/bin/python3 "$here/operator_client.py" localhost "$port" alice secret-alice bob secret-bob --restarted "$since"
