#!/usr/bin/env bash
# Installs kustomize (the Go module sigs.k8s.io/kustomize/kustomize/v5) into .pets/tools/bin for the
# deployment tests (tests/deploy builds the rendered overlays with it). Cached: a second run is a no-op.
# Cold: ~80 s on a loaded 2-core machine (module download + build; 3 s with the Go module cache warm). Without Go it says so and exits 0: the
# kustomize tests then skip with that reason.
set -euo pipefail
VERSION=v5.7.1
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.pets/tools/bin"
if [ -x "$bin/kustomize" ] && [ "$("$bin/kustomize" version 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "kustomize: Go is not installed, so kustomize $VERSION cannot be built; the kustomize tests will skip"
  exit 0
fi
echo "kustomize: building $VERSION into $bin (once)"
mkdir -p "$bin"
GOBIN="$bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION"
