#!/usr/bin/env bash
# `pets bench loop --repeat 3` of this checkout and of an earlier commit in turn, in the same minutes:
# the wall clock of this machine moves by 10-40 % within an hour, so figures from another day do not
# compare. Usage: scripts/bench-loop-against.sh COMMIT [ROUNDS] [CONFIG_DIR]
#   COMMIT      the commit to compare with (e.g. 2cdf0a9, the four-bot loop of the day issue 10 was filed)
#   ROUNDS      rounds of one run each (default 6)
#   CONFIG_DIR  this checkout's config (default config/; e.g. a copy with some bots disabled)
# The commit is checked out in a temporary worktree and its hot path compiled (make native's build,
# ~1.5-2.5 min) with this checkout's venv; both sides run compiled or the script stops.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
commit="${1:?usage: $0 COMMIT [ROUNDS] [CONFIG_DIR]}"
rounds="${2:-6}"
config="${3:-$root/config}"
python="$root/.venv/bin/python"
pets="$root/.venv/bin/pets"
# both sides replay this checkout's shared recordings (the worktree's own ../shared is elsewhere)
export PETS_SHARED_DATA="${PETS_SHARED_DATA:-$(dirname "$root")/shared/data}"
other="$(mktemp -d /tmp/pets-bench-against.XXXXXX)"
trap 'git -C "$root" worktree remove --force "$other" >/dev/null 2>&1 || rm -rf "$other"' EXIT
git -C "$root" worktree add --detach "$other" "$commit" >/dev/null
echo "building the hot path of $commit in $other" >&2
(cd "$other" && PYTHONPATH="$other/src" PETS_NATIVE=0 "$python" -m pets.native.build >&2)
fields='import json,sys; d=json.load(sys.stdin); print(d["input"], d["frames_per_s"], d["intents"], d["approved"], d["compiled"], len(d["bots"]), "bots")'
for round in $(seq 1 "$rounds"); do
  echo "round $round $(date +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  for side in this other; do
    if [ "$side" = this ]; then src="$root/src"; cfg="$config"; else src="$other/src"; cfg="$other/config"; fi
    out="$(cd /tmp && PYTHONPATH="$src" PETS_CONFIG_DIR="$cfg" "$pets" bench loop --repeat 3 --json)"
    line="$(echo "$out" | "$python" -c "$fields")"
    case "$line" in *" True "*) ;; *) echo "$side: not compiled ($line)" >&2; exit 1 ;; esac
    echo "  $side $line"
  done
done
