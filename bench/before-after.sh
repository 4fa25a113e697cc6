#!/usr/bin/env bash
# Two strata builds side by side on the same machine in one go (docs/BENCHMARKS.md, "Before and after"):
#   load of bench/make-image.py's ~170 MB 4-layer docker-archive, pull of it from a loopback
#   docker-registry (and of bench/make-pull-image.sh's image, when made), `run --rm IMAGE true`, and a cold `build` (COPY of 2,000 files + RUN) on a
#   busybox base. Runs interleave OLD and NEW, every timed run gets a fresh store, medians of RUNS.
# Usage: bench/before-after.sh OLD_BINARY NEW_BINARY   (as root; needs skopeo, docker-registry, busybox-static)
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-5}
PORT=${PORT:-5998}
R=127.0.0.1:$PORT
mkdir -p "$B"
[ -f "$B/image.tar" ] || python3 bench/make-image.py "$B" >/dev/null

rm -rf "$B/registry-ba"
cat > "$B/registry-ba.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $B/registry-ba}}
http: {addr: $R}
EOF
docker-registry serve "$B/registry-ba.yml" >/dev/null 2>&1 &
reg_pid=$!
trap 'kill $reg_pid' EXIT
until curl -sf "http://$R/v2/" >/dev/null; do sleep 0.1; done
skopeo copy -q --dest-tls-verify=false --dest-compress docker-archive:"$B/image.tar" "docker://$R/bench/image:1"
# Issue 17's image too, when bench/make-pull-image.sh has made it.
[ ! -f "$B/pull-image.tar" ] || skopeo copy -q --dest-tls-verify=false --dest-compress docker-archive:"$B/pull-image.tar" "docker://$R/bench/pull:1"

# A busybox base and a build context of 2,000 small files.
ctx="$B/ba-ctx"
rm -rf "$ctx" "$B/ba-base"; mkdir -p "$ctx/files" "$B/ba-base/bin"
cp /bin/busybox "$B/ba-base/bin/"; for c in sh cat ls wc find; do ln -s busybox "$B/ba-base/bin/$c"; done
tar -C "$B/ba-base" -cf "$B/ba-base.tar" .
python3 - "$ctx/files" <<'PY'
import os, random, sys
random.seed(6)
for d in range(20):
    os.makedirs(f"{sys.argv[1]}/d{d:02}", exist_ok=True)
    for f in range(100):
        with open(f"{sys.argv[1]}/d{d:02}/f{f:03}.txt", "wb") as fh:
            fh.write(os.urandom(random.randint(1024, 8192)))
PY
printf 'FROM base\nCOPY files/ /app/files/\nRUN find /app/files -type f | wc -l > /app/count\n' > "$ctx/Dockerfile"

# t BIN PREP CMD: seconds of CMD (with {S} = BIN --root FRESH) after PREP
t() {
  local root; root=$(mktemp -d "$B/ba-store-XXXXXX")
  local s="$1 --root $root"
  bash -c "${2//\{S\}/$s}" >/dev/null 2>&1; sync
  local t0 t1; t0=$(date +%s.%N); bash -c "${3//\{S\}/$s}" >/dev/null 2>&1; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() {
  local a=() b=()
  for _ in $(seq "$RUNS"); do a+=("$(t "$OLD" "$2" "$3")"); b+=("$(t "$NEW" "$2" "$3")"); done
  local ma mb; ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  printf '| %s | %.3f s | %.3f s | %.2f |\n' "$1" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
}
echo "| operation | before | after | after/before |"
echo "|---|---|---|---|"
row "load (170 MB, 4 layers)" "true" "{S} load -q -i $B/image.tar"
row "pull (same image, loopback registry)" "true" "{S} pull -q $R/bench/image:1"
[ ! -f "$B/pull-image.tar" ] || row "pull (issue 17's image, 179 MB gzip, 324 MB)" "true" "{S} pull -q $R/bench/pull:1"
row "run --rm --network none IMAGE true" "{S} import $B/ba-base.tar base" "{S} run --rm --network none base true"
row "build, cold (COPY 2,000 files + RUN)" "{S} import $B/ba-base.tar base" "{S} build -q -t out $ctx"
for d in "$B"/ba-store-*; do umount -R "$d"/mounts/* "$d"/netns/* 2>/dev/null || true; done
rm -rf "$B"/ba-store-*
