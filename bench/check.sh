#!/usr/bin/env bash
# system check (docs/BENCHMARKS.md, "system check"), one go on one machine: a store holding the
# benchmark images (bench/make-image.py's 4 layers of host files, bench/make-explore-image.py's
# 50,000 small files in gzip layers, and a 512 MiB incompressible file imported as one layer),
# checked by `strata system check` and `--quick`, against the lower bound of reading everything
# once: `sha256sum` of every blob plus `tar -c DIR | sha256sum` of every layer directory.
# Interleaved runs, median of RUNS. Needs python3; root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-5}
R="$B/check-store"
S="$PWD/target/release/strata --root $R"
[ -f "$B/image.tar" ] || python3 bench/make-image.py "$B" >/dev/null
[ -f "$B/explore.tar" ] || python3 bench/make-explore-image.py "$B" >/dev/null
if [ ! -f "$B/big-layer.tar" ]; then
  mkdir -p "$B/big-layer"; head -c $((512 << 20)) /dev/urandom > "$B/big-layer/blob.bin"
  tar -C "$B/big-layer" -cf "$B/big-layer.tar" .
fi
rm -rf "$R"
$S load -q -i "$B/image.tar" >/dev/null
$S load -q -i "$B/explore.tar" >/dev/null
$S import "$B/big-layer.tar" bench/big:1 >/dev/null
du -sh "$R" | cut -f1 | sed 's/^/store size: /'
echo "files in layers: $(find "$R/layers" -type f | wc -l)"
bound() {
  find "$R/blobs" -type f -print0 | xargs -0 sha256sum >/dev/null
  for d in "$R"/layers/*/diff; do tar -C "$d" -cf - . | sha256sum >/dev/null; done
}
# The same reads with OpenSSL's SHA-256 (SHA-NI), where Debian's sha256sum has none.
bound_openssl() {
  find "$R/blobs" -type f -print0 | xargs -0 openssl sha256 >/dev/null
  for d in "$R"/layers/*/diff; do tar -C "$d" -cf - . | openssl sha256 >/dev/null; done
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
full=(); quick=(); lower=(); lower2=()
for i in $(seq "$RUNS"); do
  lower+=("$(t bound)")
  lower2+=("$(t bound_openssl)")
  full+=("$(t $S system check)")
  quick+=("$(t $S system check --quick)")
done
ml=$(printf '%s\n' "${lower[@]}" | median)
mf=$(printf '%s\n' "${full[@]}" | median)
mq=$(printf '%s\n' "${quick[@]}" | median)
ml2=$(printf '%s\n' "${lower2[@]}" | median)
echo "| system check (median of $RUNS) | time | / lower bound |"
echo "|---|---|---|"
printf '| lower bound: sha256sum of every blob + tar -c of every layer directory piped to sha256sum | %.3f s | 1.00x |\n' "$ml"
printf '| the same with openssl sha256 | %.3f s | %.2fx |\n' "$ml2" "$(echo "$ml2 / $ml" | bc -l)"
printf '| strata system check | %.3f s | %.2fx |\n' "$mf" "$(echo "$mf / $ml" | bc -l)"
printf '| strata system check --quick | %.3f s | %.2fx |\n' "$mq" "$(echo "$mq / $ml" | bc -l)"
