#!/usr/bin/env bash
# Side-by-side benchmarks for the image store (docs/BENCHMARKS.md), run in one go on one machine:
#   load and save of a ~170 MB, 4-layer docker-archive: strata vs podman (overlay driver), fresh store each load;
#   unpack of one ~47 MB layer: strata import (verify, keep the blob, apply) vs plain tar -x.
# Runs are interleaved (A B A B ...) and each is preceded by `sync`, because on this VM the cost of
# writing pages swings a lot over time; the median of RUNS runs is reported.
# Needs podman and python3; run as root from the repo after `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-7}
S="$PWD/target/release/strata"
P="podman --root $B/p --runroot /tmp/pbx --storage-driver overlay"
[ -f "$B/image.tar" ] || python3 bench/make-image.py "$B" >/dev/null
layer=$(ls -S "$B"/*.tar | grep -v -e image.tar -e out- | head -1)

clean_podman() { $P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/p" /tmp/pbx; }
# time_cmd PREPARE COMMAND: seconds of COMMAND after PREPARE and sync
time_cmd() { bash -c "$1" >/dev/null 2>&1; sync; local t0 t1; t0=$(date +%s.%N); bash -c "$2" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
export -f clean_podman; export P B

# pair NAME PREP_A CMD_A PREP_B CMD_B
pair() {
  local a=() b=()
  for _ in $(seq "$RUNS"); do a+=("$(time_cmd "$2" "$3")"); b+=("$(time_cmd "$4" "$5")"); done
  local ma mb; ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  printf '| %s | %.2f s | %.2f s | %.2fx |\n' "$1" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
  LAST_A=$ma; LAST_B=$mb
}

echo "| benchmark (median of $RUNS) | strata | peer | peer / strata |"
echo "|---|---|---|---|"
pair "load 170 MB 4-layer docker-archive (vs podman load)" \
  "rm -rf $B/s" "$S --root $B/s load -q -i $B/image.tar" \
  "clean_podman" "$P load -q -i $B/image.tar"
rm -rf "$B/s"; $S --root "$B/s" load -q -i "$B/image.tar"
clean_podman; $P load -q -i "$B/image.tar" >/dev/null
ds=$(du -s --block-size=1 "$B/s" | cut -f1); dp=$(du -s --block-size=1 "$B/p" | cut -f1)
printf '| store on disk after the load (du) | %d MB | %d MB | %.2fx |\n' $((ds / 1000000)) $((dp / 1000000)) "$(echo "$dp / $ds" | bc -l)"
pair "save it as docker-archive (vs podman save)" \
  "rm -f $B/out-s.tar" "$S --root $B/s save -o $B/out-s.tar bench/image:1" \
  "rm -f $B/out-p.tar" "$P save -q -o $B/out-p.tar localhost/bench/image:1"
pair "unpack one $(($(stat -c %s "$layer") / 1000000)) MB layer (vs tar -x)" \
  "rm -rf $B/u" "$S --root $B/u import $layer" \
  "rm -rf $B/t; mkdir -p $B/t" "tar -xf $layer -C $B/t"
mb=$(echo "$(stat -c %s "$layer") / 1000000" | bc -l)
printf '\nunpack throughput: strata %.1f MB/s, tar -x %.1f MB/s\n' "$(echo "$mb / $LAST_A" | bc -l)" "$(echo "$mb / $LAST_B" | bc -l)"
clean_podman; rm -rf "$B/s" "$B/u" "$B/t" "$B"/out-*.tar
