#!/usr/bin/env bash
# Builds bindings/lua/lastseen_core.so, the C half of the Lua binding,
# against wasmtime's C API from the wasmtime-go module zip (the Go module
# proxy serves it; Debian ships no WebAssembly runtime). Needs gcc and
# liblua5.4-dev. Usage: bash bindings/lua/build.sh [-check]
# With -check it only says whether the library is up to date (exit 1 if not).
set -euo pipefail
cd "$(dirname "$0")"

WASMTIME_GO=github.com/bytecodealliance/wasmtime-go/v25@v25.0.0
out=lastseen_core.so

if [ "${1:-}" = -check ]; then
  [ -f "$out" ] && [ "$out" -nt lastseen_core.c ] && exit 0
  echo "$out is missing or older than lastseen_core.c" >&2
  exit 1
fi

if ! command -v go >/dev/null 2>&1; then
  echo "go is needed to fetch wasmtime's C API through the Go module proxy (Debian: apt-get install golang-go)" >&2
  exit 1
fi
# Outside the lastseen module, so that the download does not touch go.sum.
# go reports a failed download in the JSON (no network, a proxy refusing):
# say so, rather than ending without a word.
if ! json=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$WASMTIME_GO"); then
  echo "could not fetch $WASMTIME_GO (wasmtime's C API) through the Go module proxy ($(go env GOPROXY)):" >&2
  echo "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/  \1/p' >&2
  exit 1
fi
dir=$(echo "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -f "$dir/build/linux-x86_64/libwasmtime.a" ]; then
  echo "wasmtime's C API not found in $WASMTIME_GO (only linux-x86_64 is handled here)" >&2
  exit 1
fi
lua_inc=$(pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)

# No -llua5.4: the host process (lua5.4, Prosody) provides Lua.
# --exclude-libs hides wasmtime's symbols; -z nodelete keeps the code
# mapped for wasmtime's threads when Lua unloads the library at exit.
gcc -O2 -fPIC -shared -Wall -Wno-unused-parameter $lua_inc -I"$dir/build/include" \
  -o "$out.tmp" lastseen_core.c "$dir/build/linux-x86_64/libwasmtime.a" \
  -Wl,--exclude-libs,ALL -Wl,--gc-sections -Wl,-z,nodelete -lpthread -ldl -lm
mv "$out.tmp" "$out"
echo "built bindings/lua/$out"
