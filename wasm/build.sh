#!/usr/bin/env bash
# Builds wasm/lastseen.wasm from wasm/guest, reproducibly: the same sources
# and Go toolchain give the same bytes on every machine.
#
#   bash wasm/build.sh          rebuild wasm/lastseen.wasm
#   bash wasm/build.sh -check   rebuild into a temporary file and fail if the
#                               committed wasm/lastseen.wasm differs (CI)
#
# `go generate ./wasm` runs the first form.
set -euo pipefail
cd "$(dirname "$0")"

check=0
case "${1:-}" in
"") ;;
-check) check=1 ;;
*) echo "usage: $0 [-check]" >&2; exit 2 ;;
esac

# The toolchain is part of the input: another Go release compiles other
# bytes. GOTOOLCHAIN makes the go command fetch this release (through the Go
# module proxy) when the installed one differs.
toolchain=go1.26.8

tmp=$(mktemp "${TMPDIR:-/tmp}/lastseen-wasm.XXXXXX")
trap 'rm -f "$tmp"' EXIT

# Everything that changes the output is pinned here; the environment's
# GOFLAGS and friends are cleared so that a developer's settings cannot leak
# in. -trimpath drops file system paths, -buildvcs=false the commit (which
# would change on every commit), -buildid= the build ID, -s -w the symbol
# table and DWARF.
env -u GOFLAGS -u GOEXPERIMENT -u GOWASM -u GODEBUG \
	GOTOOLCHAIN="$toolchain" GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOFLAGS= GOWASM= GOEXPERIMENT= \
	go build -trimpath -buildvcs=false -buildmode=c-shared \
	-ldflags='-s -w -buildid=' -o "$tmp" ./guest

if [ "$check" = 1 ]; then
	if ! cmp -s "$tmp" lastseen.wasm; then
		echo "wasm/lastseen.wasm is stale: it differs from a fresh build of wasm/guest." >&2
		echo "Run 'go generate ./wasm' (or 'bash wasm/build.sh') and commit the result." >&2
		exit 1
	fi
	echo "wasm/lastseen.wasm is up to date ($(wc -c <lastseen.wasm) bytes)"
	exit 0
fi
mv "$tmp" lastseen.wasm
chmod 644 lastseen.wasm
trap - EXIT
echo "wrote wasm/lastseen.wasm ($(wc -c <lastseen.wasm) bytes)"
