#!/usr/bin/env bash
# Builds a real Kubernetes API server (kube-apiserver, from the k8s.io/kubernetes Go module) and etcd
# into .pets/tools/bin for tests/deploy/test_apiserver.py: `pets deploy apply|diff|status` run against
# it with the real kubectl. No kubelet or container runtime here: objects are stored, validated and
# admitted (PodSecurity included), no pod runs. Cached: a second run is a no-op.
# Cold: ~5 min on an idle 2-core machine (module download ~15 s, then the compile); warm: seconds.
# Without Go it says so and exits 0: those tests then skip with that reason.
set -euo pipefail
KUBERNETES=v1.37.2 # k8s.io/kubernetes; its staging modules (k8s.io/api, ...) are published as v0.37.2
STAGING=v0.37.2
ETCD=v3.6.16
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.pets/tools/bin"
stamp="$bin/.kube-apiserver-$KUBERNETES-etcd-$ETCD"
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ] && [ -f "$stamp" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "kube-apiserver: Go is not installed, so kube-apiserver $KUBERNETES cannot be built; its tests will skip"
  exit 0
fi
echo "kube-apiserver: building kube-apiserver $KUBERNETES and etcd $ETCD into $bin (once, ~5 min cold)"
mkdir -p "$bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod

# k8s.io/kubernetes points its staging modules at ./staging (replace directives), which a module
# download leaves out: a wrapper module points them at their published releases instead.
mkdir -p "$work/apiserver" "$work/etcd"
modfile="$(cd "$work/apiserver" && go mod download -json "k8s.io/kubernetes@$KUBERNETES" |
  sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
{
  printf 'module pets.local/apiserver\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBERNETES"
  awk -v v="$STAGING" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "\t" $1 " => " $1 " " v}' "$modfile"
  printf ')\n'
} >"$work/apiserver/go.mod"
minor="${KUBERNETES#v1.}"  # the version the server reports (kubectl compares it with its own)
version="-X k8s.io/component-base/version.gitVersion=$KUBERNETES -X k8s.io/component-base/version.gitMajor=1"
version="$version -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
(cd "$work/apiserver" &&
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES" >/dev/null 2>&1 &&
  go build -trimpath -o "$bin/kube-apiserver" -ldflags="-s -w $version" k8s.io/kubernetes/cmd/kube-apiserver)

# etcd's server module replaces its sibling modules the same way; a plain requirement resolves them.
printf 'module pets.local/etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD" >"$work/etcd/go.mod"
(cd "$work/etcd" &&
  go get "go.etcd.io/etcd/server/v3@$ETCD" >/dev/null 2>&1 &&
  go build -trimpath -ldflags="-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
rm -f "$bin"/.kube-apiserver-*
touch "$stamp"
