#!/usr/bin/env bash
# The image issue 17 measures pulls with (bench/registry.sh with
# ARCHIVE=$B/pull-image.tar), made once into $B/pull-image.tar as a
# docker-archive of four layers: a Debian bookworm minbase (debootstrap from
# Debian's mirror), this host's Python standard library, 64 MiB of random
# bytes, and a layer that deletes files of the first. Needs debootstrap,
# python3; root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
S="$PWD/target/release/strata --root $B/pull-image-store"
mkdir -p "$B"
BENCH_DIR=$B bench/bookworm-minbase.sh
rm -rf "$B/pull-image-store" "$B/pull-ctx"
mkdir -p "$B/pull-ctx"
cp -a /usr/lib/python3.11 "$B/pull-ctx/python3.11"
head -c $((64 << 20)) /dev/urandom > "$B/pull-ctx/random.bin"
cat > "$B/pull-ctx/Dockerfile" <<'DF'
FROM bench/bookworm:minbase
COPY python3.11 /usr/local/lib/python3.11
COPY random.bin /opt/random.bin
RUN rm -rf /usr/share/doc /usr/share/man /usr/share/locale /var/cache/debconf
DF
$S import "$B/bookworm-minbase.tar" bench/bookworm:minbase >/dev/null
$S build -q --network none -t bench/pull:1 "$B/pull-ctx" >/dev/null
$S save -o "$B/pull-image.tar" bench/pull:1
rm -rf "$B/pull-image-store" "$B/pull-ctx"
echo "$B/pull-image.tar"
