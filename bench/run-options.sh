#!/usr/bin/env bash
# Run options and the monitor (docs/BENCHMARKS.md, "Run options and the monitor"), one go on one machine:
#   memory per detached running container with N (default 50) running `sleep`: the monitor's RSS
#   and PSS (strata-monitor vs podman's conmon) and with the container's own process;
#   `run --rm --init IMAGE true` and `run -d` with a health check vs strata's plain `run`
#   (interleaved, median of RUNS).
# Needs podman, busybox-static; root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-15}
N=${CONTAINERS:-50}
S="$PWD/target/release/strata --root $B/ro"
P="podman --root $B/rop --runroot /tmp/pbro --storage-driver overlay"
PU="--ulimit nproc=4096:4096 --ulimit nofile=4096:4096"
mkdir -p "$B"
cleanup() {
  $S rm -f $($S ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  $P rm -f -a -t 0 >/dev/null 2>&1 || true
}
trap cleanup EXIT
rm -rf "$B/ro"; $P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/rop" /tmp/pbro "$B/roroot"
mkdir -p "$B/roroot/bin"
cp /bin/busybox "$B/roroot/bin/"
for c in true sleep sh; do ln -s busybox "$B/roroot/bin/$c"; done
tar -C "$B/roroot" -cf "$B/roroot.tar" .
$S import "$B/roroot.tar" localhost/robench:1 >/dev/null
$P import -q "$B/roroot.tar" localhost/robench:1 >/dev/null

# kb FIELD PIDS...: the sum of a /proc status or smaps_rollup field over PIDS, in kB.
kb() { local f=$1; shift; local t=0 p v; for p in "$@"; do
  v=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status" "/proc/$p/smaps_rollup" 2>/dev/null | head -1); t=$((t + ${v:-0})); done; echo $t; }
for i in $(seq "$N"); do
  $S run -d --network none --name m$i localhost/robench:1 sleep 100000 >/dev/null
  $P run -d $PU --network none --name m$i localhost/robench:1 sleep 100000 >/dev/null
done
sm=($(pgrep -x strata-monitor)); pm=($(pgrep -x conmon))
sc=($(for p in "${sm[@]}"; do pgrep -P "$p"; done)); pc=($(for p in "${pm[@]}"; do pgrep -P "$p"; done))
[ "${#sm[@]}" -eq "$N" ] && [ "${#pm[@]}" -eq "$N" ] || { echo "expected $N monitors each: ${#sm[@]} strata-monitor, ${#pm[@]} conmon" >&2; exit 1; }
row() { printf '| %s | %d kB | %d kB | %.2fx |\n' "$1" $(($2 / N)) $(($3 / N)) "$(echo "$3 / $2" | bc -l)"; }
echo "| per detached container, $N running (kB, mean) | strata | podman | podman / strata |"
echo "|---|---|---|---|"
row "monitor RSS (strata-monitor vs conmon)" "$(kb VmRSS "${sm[@]}")" "$(kb VmRSS "${pm[@]}")"
row "monitor PSS" "$(kb Pss "${sm[@]}")" "$(kb Pss "${pm[@]}")"
row "monitor private dirty (its own memory)" "$(kb Private_Dirty "${sm[@]}")" "$(kb Private_Dirty "${pm[@]}")"
row "monitor + container process RSS" "$(( $(kb VmRSS "${sm[@]}") + $(kb VmRSS "${sc[@]}") ))" "$(( $(kb VmRSS "${pm[@]}") + $(kb VmRSS "${pc[@]}") ))"
cleanup

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1; t0=$(date +%s.%N); bash -c "$1" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
a=(); b=(); c=(); d=()
for i in $(seq "$RUNS"); do
  a+=("$(t "$S run --rm --network none localhost/robench:1 true")")
  b+=("$(t "$S run --rm --init --network none localhost/robench:1 true")")
  c+=("$(t "$S run -d --network none --name plain$i localhost/robench:1 sleep 1000")")
  d+=("$(t "$S run -d --network none --health-cmd true --health-interval 1s --name health$i localhost/robench:1 sleep 1000")")
  $S rm -f plain$i health$i >/dev/null
done
ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
mc=$(printf '%s\n' "${c[@]}" | median); md=$(printf '%s\n' "${d[@]}" | median)
echo
echo "| benchmark (median of $RUNS) | plain | with the option | option / plain |"
echo "|---|---|---|---|"
printf '| run --rm IMAGE true vs run --rm --init | %.3f s | %.3f s | %.2fx |\n' "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
printf '| run -d IMAGE sleep vs run -d --health-cmd true --health-interval 1s | %.3f s | %.3f s | %.2fx |\n' "$mc" "$md" "$(echo "$md / $mc" | bc -l)"
