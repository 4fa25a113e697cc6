#!/usr/bin/env bash
# Container start benchmark (docs/BENCHMARKS.md), one go on one machine:
#   `run --rm IMAGE true` on a Debian (debootstrap minbase) image: strata (built-in runtime) vs
#   `podman run --rm` (runc, overlay) vs bare `runc run` on a prepared bundle;
#   `create` of 100 containers: time and disk, strata vs podman.
# Interleaved runs, median of RUNS. Needs debootstrap, podman, runc; root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-15}
S="$PWD/target/release/strata --root $B/cs"
P="podman --root $B/cp --runroot /tmp/pbc --storage-driver overlay"
mkdir -p "$B"
[ -d "$B/debian" ] || debootstrap --variant=minbase bookworm "$B/debian" http://deb.debian.org/debian >/dev/null
[ -f "$B/debian.tar" ] || tar -C "$B/debian" -cf "$B/debian.tar" .
rm -rf "$B/cs"; $P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/cp" /tmp/pbc
$S import "$B/debian.tar" bench/debian:1 >/dev/null
$P import -q "$B/debian.tar" localhost/bench/debian:1 >/dev/null
# A bare runc bundle: the same tree, runc's default spec running `true`.
rm -rf "$B/bundle"; mkdir -p "$B/bundle"; cp -a "$B/debian" "$B/bundle/rootfs"
( cd "$B/bundle" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]
json.dump(c, open("config.json", "w"))
PY
)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1; t0=$(date +%s.%N); bash -c "$1" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
a=(); b=(); c=()
for i in $(seq "$RUNS"); do
  a+=("$(t "$S run --rm bench/debian:1 true")")
  b+=("$(t "$P run --rm localhost/bench/debian:1 true")")
  c+=("$(t "runc --root /tmp/runc-bench run --bundle $B/bundle bench$i")")
done
ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median); mc=$(printf '%s\n' "${c[@]}" | median)
echo "| benchmark (median of $RUNS) | strata | podman | bare runc | podman / strata | runc / strata |"
echo "|---|---|---|---|---|---|"
printf '| run --rm debian true | %.3f s | %.3f s | %.3f s | %.1fx | %.2fx |\n' "$ma" "$mb" "$mc" "$(echo "$mb / $ma" | bc -l)" "$(echo "$mc / $ma" | bc -l)"
# 100 creates
d0s=$(du -s --block-size=1 "$B/cs" | cut -f1); d0p=$(du -s --block-size=1 "$B/cp" | cut -f1)
ts=$(t "for i in \$(seq 100); do $S create bench/debian:1 true; done")
tp=$(t "for i in \$(seq 100); do $P create localhost/bench/debian:1 true; done")
d1s=$(du -s --block-size=1 "$B/cs" | cut -f1); d1p=$(du -s --block-size=1 "$B/cp" | cut -f1)
printf '| create 100 containers | %.2f s, +%d kB | %.2f s, +%d kB | | %.1fx (time) | |\n' "$ts" $(((d1s - d0s) / 1000)) "$tp" $(((d1p - d0p) / 1000)) "$(echo "$tp / $ts" | bc -l)"
$S rm -f $($S ps -aq) >/dev/null; $P rm -af >/dev/null 2>&1 || true
$P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/cs" "$B/cp" /tmp/pbc "$B/bundle"
