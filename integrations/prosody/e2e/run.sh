#!/bin/sh
# Runs the Prosody e2e suite: with mod_lastseen, and (with --compare) also
# against stock Prosody, the two printed side by side. Needs prosody,
# python3-slixmpp and bindings/lua/lastseen_core.so (bash bindings/lua/build.sh).
set -e
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
for c in prosody prosodyctl; do command -v $c >/dev/null || { echo "e2e: $c missing (apt-get install -y prosody)" >&2; exit 1; }; done
/usr/bin/python3 -c 'import slixmpp' || { echo "e2e: python3-slixmpp missing" >&2; exit 1; }
[ -f "$repo/bindings/lua/lastseen_core.so" ] || { echo "e2e: build bindings/lua first (bash bindings/lua/build.sh)" >&2; exit 1; }
if [ "$1" = "--compare" ]; then
  out=$(mktemp -d)
  timeout 300 /usr/bin/python3 "$here/suite.py" --repo "$repo" > "$out/lastseen" || true
  timeout 300 /usr/bin/python3 "$here/suite.py" --repo "$repo" --stock > "$out/stock" || true
  /usr/bin/python3 "$here/compare.py" "$out/lastseen" "$out/stock"
  rm -rf "$out"
  exit 0
fi
exec timeout 300 /usr/bin/python3 "$here/suite.py" --repo "$repo"
