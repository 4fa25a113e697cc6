#!/usr/bin/env bash
# The layer explorer (docs/BENCHMARKS.md, "The layer explorer"), one go on one machine:
# `image layers` of an image of 50,000 files over 5 gzip layers (bench/make-explore-image.py),
# loaded into a strata store:
#   first run (no layer indexed yet), second run (indexes kept), and a second image on the same
#   base (only its own layer to index), vs the lower bound of listing the layers' tars
#   (`tar -tvzf` of each layer blob, which any tool that exports the image must at least do).
# Interleaved runs, median of RUNS. Needs python3; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-7}
S="$PWD/target/release/strata --root $B/explore-store"
[ -f "$B/explore.tar" ] || python3 bench/make-explore-image.py "$B" >/dev/null
rm -rf "$B/explore-store"
$S load -q -i "$B/explore.tar" >/dev/null
base=$($S image layers --format json explore:base | python3 -c 'import json,sys; print(" ".join(r["chain_id"].split(":")[1] for r in json.load(sys.stdin)["rows"] if r["chain_id"]))')
top=$($S image layers --format json explore:app | python3 -c 'import json,sys; print([r["chain_id"].split(":")[1] for r in json.load(sys.stdin)["rows"] if r["chain_id"]][-1])')
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1; t0=$(date +%s.%N); bash -c "$1" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
first=(); second=(); other=(); tars=()
for i in $(seq "$RUNS"); do
  for c in $base $top; do rm -f "$B/explore-store/layers/$c/files.idx.zst"; done
  tars+=("$(t "for l in 0 1 2 3 4; do tar -tvzf $B/explore-layer-\$l.tar.gz; done")")
  first+=("$(t "$S image layers explore:base")")
  second+=("$(t "$S image layers explore:base")")
  other+=("$(t "$S image layers explore:app")")
done
mt=$(printf '%s\n' "${tars[@]}" | median)
row() { local m; m=$(printf '%s\n' "${@:2}" | median); printf '| %s | %.3f s | %.3f s | %.2fx |\n' "$1" "$m" "$mt" "$(echo "$m / $mt" | bc -l)"; }
echo "| image layers, 50,000 files in 5 layers (median of $RUNS) | strata | tar -tvzf of each layer | strata / tar |"
echo "|---|---|---|---|"
row "first run (no layer indexed)" "${first[@]}"
row "second run (indexes kept)" "${second[@]}"
row "a second image on the same base (one new layer)" "${other[@]}"
