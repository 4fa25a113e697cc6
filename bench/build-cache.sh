#!/usr/bin/env bash
# The CI case of the build benchmark (docs/BENCHMARKS.md): a machine with
# nothing in its store builds a Dockerfile whose every step another machine
# built and cached in a registry. Side by side, in one go:
#   strata:   an empty --root, `build --cache-from type=registry,ref=REG/cache`
#             (exported before by `build --cache-to` on another store)
#   BuildKit: Docker 20.10's, a dockerd started on an empty --data-root for
#             each run (its start not timed), `build --cache-from REG/app:cache`
#             (an image pushed before with BUILDKIT_INLINE_CACHE=1)
# Both pull the base image from the same registry (Debian's docker-registry
# on 127.0.0.1) and get every step from the cache; the result is the same
# Dockerfile as bench/build.sh's. Every RUN has no network. Interleaved runs,
# each in a fresh directory, median of RUNS. Needs debootstrap, docker.io,
# docker-registry; root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-5}
STRATA="$PWD/target/release/strata"
mkdir -p "$B"
[ -d "$B/debian" ] || debootstrap --variant=minbase bookworm "$B/debian" http://deb.debian.org/debian >/dev/null
[ -f "$B/debian.tar" ] || tar -C "$B/debian" -cf "$B/debian.tar" .
W="$B/ci"
rm -rf "$W"; mkdir -p "$W"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG="127.0.0.1:$port"
cat > "$W/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: $REG
EOF
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
registry_pid=$!
dockerd_pid=
stop_dockerd() {
  [ -n "$dockerd_pid" ] || return 0
  kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true
  dockerd_pid=
  # dockerd leaves its network namespace files mounted under the exec root.
  grep -o " /tmp/dkc[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf /tmp/dkc
}
cleanup() { local rc=$?; stop_dockerd; kill $registry_pid 2>/dev/null; wait $registry_pid 2>/dev/null || true; exit $rc; }
trap cleanup EXIT
until curl -sf "http://$REG/v2/" >/dev/null; do sleep 0.1; done
# A dockerd of its own on an empty data root (no bridge, no iptables).
start_dockerd() {
  mkdir -p /tmp/dkc "$1"
  /usr/sbin/dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
    --data-root "$1" --exec-root /tmp/dkc --pidfile /tmp/dkc/pid --host unix:///tmp/dkc/sock \
    --log-level error >"$W/dockerd.log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST=unix:///tmp/dkc/sock DOCKER_BUILDKIT=1
  until /usr/bin/docker version >/dev/null 2>&1; do sleep 0.1; done
}
DK=/usr/bin/docker
# The base image, in the registry.
S0="$STRATA --root $W/seed-strata"
$S0 import "$B/debian.tar" "$REG/bench/debian:1" >/dev/null
$S0 push -q "$REG/bench/debian:1" >/dev/null
# The context: 2,000 files of 1-8 KiB in 20 directories (as bench/build.sh).
ctx="$W/ctx"
mkdir -p "$ctx/files"
python3 bench/make-build-context.py "$ctx/files"
cat > "$ctx/Dockerfile" <<EOF
FROM $REG/bench/debian:1
COPY files/ /app/files/
RUN find /app/files -type f | wc -l > /app/count && sha256sum /app/files/d00/* > /app/sums
RUN mkdir -p /app/out && for i in \$(seq 1 200); do echo "line \$i" >> /app/out/log; done
CMD ["cat", "/app/count"]
EOF
# The caches, made by another "machine" of each kind.
$S0 build --network none -q -t bench/app:1 --cache-to "type=registry,ref=$REG/cache:strata" "$ctx" >/dev/null
start_dockerd "$W/seed-docker"
$DK build --network none -q --build-arg BUILDKIT_INLINE_CACHE=1 -t "$REG/bench/app:cache" "$ctx" >/dev/null
$DK push -q "$REG/bench/app:cache" >/dev/null
stop_dockerd

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1 out; t0=$(date +%s.%N); out=$(bash -c "$1" 2>&1) || { echo "failed: $1: $out" >&2; exit 1; }; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; printf '%s\n' "$out" >"$W/last.log"; }
cached_all() { # every step after the FROM came from the cache
  local built; built=$(grep -c -- '--> [0-9.]*s$' "$W/last.log" || true)
  [ "$built" = 1 ] || { echo "not every step was cached:"; cat "$W/last.log"; exit 1; } >&2
}
docker_cached_all() { # the COPY and both RUNs came from the cache
  local n; n=$(grep -cE '^#[0-9]+ CACHED$' "$W/last.log" || true)
  [ "$n" -ge 3 ] || { echo "BuildKit did not take every step from the cache:"; cat "$W/last.log"; exit 1; } >&2
}
s=(); d=()
for i in $(seq "$RUNS"); do
  s+=("$(t "$STRATA --root $W/s$i build --network none -t bench/app:1 --cache-from type=registry,ref=$REG/cache:strata $ctx")")
  cached_all
  start_dockerd "$W/d$i"
  d+=("$(t "$DK build --network none --progress plain -t bench/app:1 --cache-from $REG/bench/app:cache $ctx")")
  docker_cached_all
  stop_dockerd
done
m() { printf '%s\n' "$@" | median; }
ms=$(m "${s[@]}"); md=$(m "${d[@]}")
echo "| CI case (median of $RUNS) | strata | Docker BuildKit | BuildKit / strata |"
echo "|---|---|---|---|"
printf '| empty store, every step from a registry cache | %.3f s | %.3f s | %.1fx |\n' "$ms" "$md" "$(echo "$md / $ms" | bc -l)"
echo "all runs (s): strata ${s[*]} | BuildKit ${d[*]}"
