#!/usr/bin/env bash
# Build benchmark (docs/BENCHMARKS.md), one go on one machine: `strata build`
# vs `buildah bud --layers` (overlay storage, runc) and vs Docker 20.10's
# BuildKit (Debian's docker.io; a dockerd this script starts on its own data
# root and socket, stopped after) on the same Dockerfile and context: a Debian
# (debootstrap minbase) base, a COPY of 2,000 files, two RUNs. Every RUN has
# no network (--network none for all three).
#   cold:   base present, nothing cached (--no-cache for all)
#   cached: a rebuild where every step is cached
# Interleaved runs, median of RUNS. Needs debootstrap, buildah, docker.io; root;
# `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-7}
S="$PWD/target/release/strata --root $B/bs"
BH="buildah --root $B/bh --runroot /tmp/bhb --storage-driver overlay"
mkdir -p "$B"
[ -d "$B/debian" ] || debootstrap --variant=minbase bookworm "$B/debian" http://deb.debian.org/debian >/dev/null
[ -f "$B/debian.tar" ] || tar -C "$B/debian" -cf "$B/debian.tar" .
rm -rf "$B/bs"; $BH rm --all >/dev/null 2>&1 || true; $BH rmi --all --force >/dev/null 2>&1 || true
rm -rf "$B/bh" /tmp/bhb "$B/docker"
# A dockerd of its own (no bridge, no iptables), stopped on exit.
x=/tmp/dkb-build; mkdir -p "$x" "$B/docker"
/usr/sbin/dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
  --data-root "$B/docker" --exec-root "$x" --pidfile "$x/pid" --host "unix://$x/sock" --log-level error >"$x/log" 2>&1 &
dockerd_pid=$!
trap 'kill $dockerd_pid 2>/dev/null; wait $dockerd_pid 2>/dev/null; rm -rf /tmp/dkb-build' EXIT
export DOCKER_HOST="unix://$x/sock" DOCKER_BUILDKIT=1
until /usr/bin/docker version >/dev/null 2>&1; do sleep 0.1; done
DK="/usr/bin/docker"
$S import "$B/debian.tar" bench/debian:1 >/dev/null
$S save -o "$B/debian-image.tar" bench/debian:1
$BH pull -q "docker-archive:$B/debian-image.tar" >/dev/null
$BH tag "$($BH images -q | head -1)" bench/debian:1
$DK load -q -i "$B/debian-image.tar" >/dev/null
# The context: 2,000 files of 1-8 KiB in 20 directories.
ctx="$B/build-ctx"
rm -rf "$ctx"; mkdir -p "$ctx/files"
python3 bench/make-build-context.py "$ctx/files"
cat > "$ctx/Dockerfile" <<'EOF'
FROM bench/debian:1
COPY files/ /app/files/
RUN find /app/files -type f | wc -l > /app/count && sha256sum /app/files/d00/* > /app/sums
RUN mkdir -p /app/out && for i in $(seq 1 200); do echo "line $i" >> /app/out/log; done
CMD ["cat", "/app/count"]
EOF
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1; t0=$(date +%s.%N); bash -c "$1" >/dev/null 2>&1 || { echo "failed: $1" >&2; exit 1; }; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }

sc=(); bc_=(); dc=(); sh=(); bh=(); dh=()
for i in $(seq "$RUNS"); do
  sc+=("$(t "$S build --network none --no-cache -q -t bench/app:1 $ctx")")
  bc_+=("$(t "$BH bud --network none --layers --no-cache -q -t bench/app:1 $ctx")")
  dc+=("$(t "$DK build --network none --no-cache -q -t bench/app:1 $ctx")")
  sh+=("$(t "$S build --network none -q -t bench/app:1 $ctx")")
  bh+=("$(t "$BH bud --network none --layers -q -t bench/app:1 $ctx")")
  dh+=("$(t "$DK build --network none -q -t bench/app:1 $ctx")")
done
m() { printf '%s\n' "$@" | median; }
r() { echo "$1 / $2" | bc -l; }
msc=$(m "${sc[@]}"); mbc=$(m "${bc_[@]}"); mdc=$(m "${dc[@]}"); msh=$(m "${sh[@]}"); mbh=$(m "${bh[@]}"); mdh=$(m "${dh[@]}")
echo "| build (median of $RUNS) | strata | buildah bud --layers | Docker BuildKit | buildah / strata | BuildKit / strata |"
echo "|---|---|---|---|---|---|"
printf '| cold (base present, --no-cache) | %.3f s | %.3f s | %.3f s | %.1fx | %.1fx |\n' "$msc" "$mbc" "$mdc" "$(r "$mbc" "$msc")" "$(r "$mdc" "$msc")"
printf '| rebuild, every step cached | %.3f s | %.3f s | %.3f s | %.1fx | %.1fx |\n' "$msh" "$mbh" "$mdh" "$(r "$mbh" "$msh")" "$(r "$mdh" "$msh")"
echo "all runs (s): strata cold ${sc[*]} | buildah cold ${bc_[*]} | BuildKit cold ${dc[*]} | strata cached ${sh[*]} | buildah cached ${bh[*]} | BuildKit cached ${dh[*]}"
