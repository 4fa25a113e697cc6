#!/usr/bin/env bash
# Networking (docs/BENCHMARKS.md, "Networking"), one go on one machine, inside a private
# network namespace made here (the host's interfaces and firewall are never touched):
#   `run --rm -p 8080:80 IMAGE true` on the default bridge, strata vs podman (both netavark 1.4
#   underneath), plus `run --rm --network none` for reference, and `network create` + `network rm`.
#   Interleaved, median of RUNS; every run gets the same warm store (the timed part is the run).
# Needs podman, busybox-static; root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-15}
NS=strata-bench-net
mkdir -p "$B"
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
cleanup() {
  pkill -f "aardvark-dns --config $B/netstore" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
IN="nsenter --net=/run/netns/$NS"
$IN ip link set lo up
S="$IN $PWD/target/release/strata --root $B/netstore"
P="$IN podman --root $B/netpodman --runroot /tmp/pbn --storage-driver overlay"
# podman raises its containers' RLIMIT_NPROC and NOFILE, which needs CAP_SYS_RESOURCE; where the
# bench runs without it (some VMs' bounding sets), ask for limits below the hard ones
# (`true` uses neither).
PU="--ulimit nproc=4096:4096 --ulimit nofile=4096:4096"
rm -rf "$B/netstore"; $P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/netpodman" /tmp/pbn
rm -rf "$B/netroot"; mkdir -p "$B/netroot/bin"
cp /bin/busybox "$B/netroot/bin/"; ln -s busybox "$B/netroot/bin/true"
tar -C "$B/netroot" -cf "$B/netroot.tar" .
$S import "$B/netroot.tar" localhost/netbench:1 >/dev/null
$P import -q "$B/netroot.tar" localhost/netbench:1 >/dev/null
# Warm both: the default network exists, netavark's shared chains are made.
$S run --rm -p 8080:80 localhost/netbench:1 true
$P run --rm $PU -p 8080:80 localhost/netbench:1 true
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1; t0=$(date +%s.%N); bash -c "$1" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
# row LABEL COMMAND: COMMAND with @ standing for the tool (strata or podman, in the namespace);
# %U stands for podman's ulimit flags (nothing for strata).
row() {
  local a=() b=() sa sb
  sa=${2//@/$S}; sa=${sa//%U/}; sb=${2//@/$P}; sb=${sb//%U/$PU}
  for _ in $(seq "$RUNS"); do a+=("$(t "$sa")"); b+=("$(t "$sb")"); done
  local ma mb; ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  printf '| %s | %.3f s | %.3f s | %.2f |\n' "$1" "$ma" "$mb" "$(echo "$ma / $mb" | bc -l)"
}
echo "| command (median of $RUNS) | strata | podman | strata / podman |"
echo "|---|---|---|---|"
row "run --rm -p 8080:80 IMAGE true (default bridge)" "@ run --rm %U -p 8080:80 localhost/netbench:1 true"
row "run --rm IMAGE true (default bridge, no port)" "@ run --rm %U localhost/netbench:1 true"
row "run --rm --network none IMAGE true" "@ run --rm %U --network none localhost/netbench:1 true"
row "network create N; network rm N" "@ network create benchnet; @ network rm benchnet"
