#!/usr/bin/env bash
# Everyday commands (docs/BENCHMARKS.md, "Everyday commands"), one go on one machine:
#   `ps -a` and `inspect --format` with 500 containers in the store, and `cp` of a 2,000-file
#   directory out of a container, strata vs podman (overlay, runc). Interleaved, median of RUNS;
#   every `cp` writes into a fresh directory.
# Needs podman, busybox-static, python3; root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-9}
CONTAINERS=${CONTAINERS:-500}
S="$PWD/target/release/strata --root $B/ev"
P="podman --root $B/evp --runroot /tmp/pbe --storage-driver overlay"
mkdir -p "$B"
rm -rf "$B/ev"; $P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/evp" /tmp/pbe "$B/evroot" "$B/evcp"
# An image: busybox and /data with 2,000 small files in 20 directories.
mkdir -p "$B/evroot/bin"
cp /bin/busybox "$B/evroot/bin/"; ln -s busybox "$B/evroot/bin/true"
python3 - "$B/evroot/data" <<'PY'
import os, random, sys
random.seed(13)
for d in range(20):
    os.makedirs(f"{sys.argv[1]}/d{d:02}", exist_ok=True)
    for f in range(100):
        with open(f"{sys.argv[1]}/d{d:02}/f{f:03}", "wb") as o:
            o.write(os.urandom(random.randint(100, 4000)))
PY
tar -C "$B/evroot" -cf "$B/evroot.tar" .
$S import "$B/evroot.tar" localhost/everyday:1 >/dev/null
$P import -q "$B/evroot.tar" localhost/everyday:1 >/dev/null
for i in $(seq "$CONTAINERS"); do
  $S create --network none --name "c$i" localhost/everyday:1 true >/dev/null
  $P create --network none --name "c$i" localhost/everyday:1 true >/dev/null
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1; t0=$(date +%s.%N); bash -c "$1" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
# row LABEL COMMAND: COMMAND with @ standing for the tool.
row() {
  local a=() b=()
  for _ in $(seq "$RUNS"); do
    a+=("$(t "${2//@/$S}")")
    b+=("$(t "${2//@/$P}")")
  done
  local ma mb; ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  printf '| %s | %.3f s | %.3f s | %.1fx |\n' "$1" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
}
# cp: each run into a directory of its own (made by the command, so no deletion precedes it).
cpcmd() { echo "d=\$(mktemp -d $B/evcp.XXXXXX) && @ cp c1:/data \$d/"; }
echo "| command ($CONTAINERS containers; median of $RUNS) | strata | podman | podman / strata |"
echo "|---|---|---|---|"
row "ps -a" "@ ps -a"
row "inspect --format '{{.State.Status}}' c250" "@ inspect --format '{{.State.Status}}' c250"
row "cp c1:/data (2,000 files, 4 MB) out" "$(cpcmd)"
$P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/evp" /tmp/pbe "$B/ev" "$B"/evcp.*
