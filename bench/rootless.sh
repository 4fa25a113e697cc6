#!/usr/bin/env bash
# Rootless benchmark (issue 19, docs/BENCHMARKS.md), one go on one machine:
# strata and podman both run by the same ordinary user (made here, with
# subordinate ranges, removed after) through runuser:
#   pull of a Debian minbase image (debootstrap; one gzip layer pushed by
#     skopeo) from a local docker-registry, a fresh store for every run;
#   `run --rm IMAGE true`, each tool's default network (strata: pasta;
#     podman 4.3: slirp4netns) and --network none;
#   a cached build (FROM, RUN, COPY; all steps cached).
# Interleaved runs (strata, podman, strata, ...), median of RUNS.
# Needs debootstrap, podman, skopeo, slirp4netns, passt, uidmap, docker-registry;
# root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-9}
U=strata-bench
H=/home/$U
BIN=$PWD/target/release/strata
mkdir -p "$B"
BENCH_DIR=$B bench/bookworm-minbase.sh

cleanup() {
  [ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null || true
  if id "$U" >/dev/null 2>&1; then
    pkill -KILL -u "$U" || true
    while pgrep -u "$U" >/dev/null; do sleep 0.1; done
    # Container layers under subordinate IDs: userdel -r removes the home as root.
    userdel -r -f "$U" >/dev/null 2>&1 || true
  fi
  rm -rf "$B/rl-reg" "$B/rl-root" "$B/rl-pull" "/tmp/strata-$UID_U" "/tmp/podman-run-$UID_U" "/tmp/containers-user-$UID_U"
}
UID_U=none
cleanup
useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$U"
usermod --add-subuids 800000-865535 --add-subgids 800000-865535 "$U"
UID_U=$(id -u "$U")
trap cleanup EXIT
asu() { runuser -u "$U" -- env -i HOME="$H" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

# A registry on loopback holding the image, pushed by root's strata.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$B/rl-reg"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$B/rl-reg" "$PORT" > "$B/rl-reg/config.yml"
docker-registry serve "$B/rl-reg/config.yml" >/dev/null 2>&1 &
REG_PID=$!
until curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null; do sleep 0.1; done
IMG=127.0.0.1:$PORT/bench/bookworm:minbase
R="$BIN --root $B/rl-root"
# Pushed by skopeo with a gzip layer, as registries serve most images
# (bench/registry.sh does the same).
$R import "$B/bookworm-minbase.tar" bench/bookworm:minbase >/dev/null
$R save -o "$B/rl-root/image.tar" bench/bookworm:minbase
skopeo copy -q --dest-tls-verify=false --dest-compress docker-archive:"$B/rl-root/image.tar" "docker://$IMG"

S="$BIN"
P="podman --storage-driver overlay"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1; sync; t0=$(date +%s.%N); asu bash -c "$1" >/dev/null 2>"$B/rl-last.err" || { echo "failed: $1" >&2; cat "$B/rl-last.err" >&2; exit 1; }; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
row() { # name, strata times, podman times
  local ms mp
  ms=$(printf '%s\n' $2 | median); mp=$(printf '%s\n' $3 | median)
  printf '| %s | %.3f s | %.3f s | %.1fx |\n' "$1" "$ms" "$mp" "$(echo "$mp / $ms" | bc -l)"
}

# Pull, a fresh store (and podman run root) for each run, side by side in
# one directory of the user's on /var/tmp: new directories in a fresh home
# on this VM's ext4 make file creation 3x slower for any tool.
PD=$B/rl-pull
mkdir -p "$PD"; chown "$U" "$PD"
a=(); b=()
for i in $(seq "$RUNS"); do
  a+=("$(t "$S --root $PD/s-$i pull -q $IMG")")
  b+=("$(t "$P --root $PD/p-$i --runroot /tmp/p-pull-$UID_U-$i pull -q --tls-verify=false $IMG")")
done
pull_s="${a[*]}"; pull_p="${b[*]}"
# Files under subordinate IDs: removed inside the user namespace.
asu bash -c "$P unshare rm -rf $PD/* /tmp/p-pull-$UID_U-*"

# The default stores, holding the image, for run and build.
asu $S pull -q "$IMG" >/dev/null
asu $P pull -q --tls-verify=false "$IMG" >/dev/null
asu $S run --rm "$IMG" true; asu $P run --rm "$IMG" true
a=(); b=(); c=(); d=()
for i in $(seq "$RUNS"); do
  a+=("$(t "$S run --rm $IMG true")")
  b+=("$(t "$P run --rm $IMG true")")
  c+=("$(t "$S run --rm --network none $IMG true")")
  d+=("$(t "$P run --rm --network none $IMG true")")
done
run_s="${a[*]}"; run_p="${b[*]}"; runn_s="${c[*]}"; runn_p="${d[*]}"

# Cached build: build once, then time rebuilds that hit the cache.
asu mkdir -p "$H/ctx"
asu bash -c "head -c 1048576 /dev/urandom > $H/ctx/f; printf 'FROM %s\nRUN echo built > /built\nCOPY f /opt/f\n' $IMG > $H/ctx/Dockerfile"
asu $S build -q -t bench/cached "$H/ctx" >/dev/null
asu $P build -q --tls-verify=false -t bench/cached "$H/ctx" >/dev/null
a=(); b=()
for i in $(seq "$RUNS"); do
  a+=("$(t "$S build -q -t bench/cached $H/ctx")")
  b+=("$(t "$P build -q --tls-verify=false -t bench/cached $H/ctx")")
done
build_s="${a[*]}"; build_p="${b[*]}"

echo "raw pull: strata $pull_s; podman $pull_p" >&2
echo "| benchmark, rootless (median of $RUNS) | strata | podman | podman / strata |"
echo "|---|---|---|---|"
row "pull Debian minbase (1 gzip layer) from a local registry, fresh store" "$pull_s" "$pull_p"
row "run --rm IMAGE true (default network: pasta / slirp4netns)" "$run_s" "$run_p"
row "run --rm --network none IMAGE true" "$runn_s" "$runn_p"
row "cached build (FROM, RUN, COPY of 1 MiB)" "$build_s" "$build_p"
