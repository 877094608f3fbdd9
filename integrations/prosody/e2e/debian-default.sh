#!/bin/sh
# Runs the suite against Debian's own /etc/prosody/prosody.cfg.lua with
# only what an operator adds for mod_lastseen (README.md) and what a test
# needs (its own pid file, data dir, log, port; no TLS required; root;
# s2s on 127.0.0.1:5269 inside the suite's network namespace, dialback),
# to check the module among Debian's default modules (smacks, carbons,
# limits, csi_simple, ...).
set -e
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
t=$(mktemp)
sed -e 's|^pidfile = .*|pidfile = "@DIR@/prosody.pid"|' \
    -e 's|^plugin_paths = .*|plugin_paths = { "@PLUGINS@" }|' \
    -e 's|^\(\s*\)"posix";|\1"posix"; "lastseen";|' \
    -e 's|^log = {|log = { { levels = { min = "@LOGLEVEL@" }, to = "file", filename = "@DIR@/prosody.log" } } _log = {|' \
    -e 's|^s2s_secure_auth = .*||' -e 's|^s2s_require_encryption = .*||' \
    -e 's|^Include .*||' /etc/prosody/prosody.cfg.lua > "$t"
sed -i '1i run_as_root = true\ndata_path = "@DIR@/data"\ninterfaces = { "127.0.0.1" }\nc2s_ports = { @PORT@ }\n@S2S@\n@EXTRA@\nhttp_ports = { }\nhttps_ports = { }\nc2s_require_encryption = false\nallow_unencrypted_plain_auth = true\nlastseen_binding_path = "@BINDING@"\nlastseen_probe_limit = @LIMIT@' "$t"
timeout 300 /usr/bin/python3 "$here/suite.py" --repo "$repo" --template "$t"; rc=$?
rm -f "$t"
exit $rc
