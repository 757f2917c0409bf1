#!/usr/bin/env bash
# Installs the TimescaleDB test server (ops/timescale-pglite: PostgreSQL + TimescaleDB in WebAssembly,
# served on a TCP port by node) with `npm ci` into $PETS_CACHE_DIR/timescale-pglite-<hash of its files>,
# once per change of those files, and prints that directory. `make test` runs it before the suite;
# pets.infra.timescale_pglite runs it when a test needs the server. Exit 3: node or npm is missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/ops/timescale-pglite"
files=(package.json package-lock.json .npmrc server.mjs)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "timescale-pglite: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
  exit 3
fi
cache="${PETS_CACHE_DIR:-$HOME/.cache/pets}"
hash=$(cd "$src" && cat "${files[@]}" | sha256sum | cut -c1-16)
target="$cache/timescale-pglite-$hash"
if [ ! -f "$target/.installed" ]; then
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/timescale-pglite-partial.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  (cd "$src" && cp "${files[@]}" "$work/")
  began=$(date +%s%N)
  (cd "$work" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >&2
  echo "timescale-pglite: npm ci in $(( ($(date +%s%N) - began) / 1000000 )) ms into $target" >&2
  touch "$work/.installed"
  # A concurrent install may have won the race: keep its directory.
  mv -T "$work" "$target" 2>/dev/null || true
fi
echo "$target"
