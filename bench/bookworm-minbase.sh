#!/usr/bin/env bash
# Makes $B/bookworm-minbase.tar once: a Debian bookworm minbase tree
# (debootstrap from Debian's mirror) as a plain tar, the base of the pull
# benchmarks' images (bench/make-pull-image.sh, bench/rootless.sh).
# Needs debootstrap; root.
set -euo pipefail
B=${BENCH_DIR:-/var/tmp/strata-bench}
mkdir -p "$B"
if [ ! -f "$B/bookworm-minbase.tar" ]; then
  rm -rf "$B/bookworm"
  debootstrap --variant=minbase bookworm "$B/bookworm" http://deb.debian.org/debian >/dev/null
  tar -C "$B/bookworm" -cf "$B/bookworm-minbase.tar.part" .
  mv "$B/bookworm-minbase.tar.part" "$B/bookworm-minbase.tar"
  rm -rf "$B/bookworm"
fi
