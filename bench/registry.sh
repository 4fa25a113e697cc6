#!/usr/bin/env bash
# Registry benchmark (docs/BENCHMARKS.md), one go on one machine, against a
# docker-registry on 127.0.0.1:
#   pull of a ~150 MB (uncompressed), 4-layer gzip image, a fresh store each run:
#     strata pull vs Docker 20.10 (Debian's docker.io: a dockerd of the
#     benchmark's own per run, on its own socket and data root, no bridge or
#     iptables) vs podman pull vs the plain lower bound (every layer in
#     parallel: curl BLOB | gzip -d | tar -x)
#   push of the same image to an empty registry: strata push vs podman push
# Interleaved runs, `sync` before each, median of RUNS. Every timed run writes
# into a new directory and all of them are removed only at the end (deleting
# hundreds of MB right before a timed run slows the next tool's file creation
# on ext4). Needs docker-registry, skopeo, podman, docker.io, curl, python3;
# root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-5}
PORT=${PORT:-5999}
R=127.0.0.1:$PORT
S="$PWD/target/release/strata"
P="podman --root $B/rp --runroot /tmp/rpx --storage-driver overlay"
# Per-run stores, removed at the end.
T="$B/runs"; rm -rf "$T"; mkdir -p "$T"
# The image: bench/make-image.py's by default; ARCHIVE=$B/pull-image.tar for issue 17's
# (bench/make-pull-image.sh).
ARCHIVE=${ARCHIVE:-$B/image.tar}
[ "$ARCHIVE" != "$B/image.tar" ] || [ -f "$ARCHIVE" ] || python3 bench/make-image.py "$B" >/dev/null
reg_pid=
start_registry() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null || true
  rm -rf "$B/registry-data"
  cat > "$B/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $B/registry-data}}
http: {addr: $R}
EOF
  docker-registry serve "$B/registry.yml" >/dev/null 2>&1 &
  reg_pid=$!
  until curl -sf "http://$R/v2/" >/dev/null; do sleep 0.1; done
}
dockerd_pid=
stop_dockerd() {
  [ -n "$dockerd_pid" ] || return 0
  kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true; dockerd_pid=
}
# A dockerd on a new data root (under $T) and a short exec root; waits until it answers.
start_dockerd() {
  local d="$T/docker-$1" x="/tmp/dkb-$1"
  mkdir -p "$d" "$x"
  /usr/sbin/dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
    --data-root "$d" --exec-root "$x" --pidfile "$x/pid" --host "unix://$x/sock" --log-level error >"$x/log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST="unix://$x/sock"
  until /usr/bin/docker version >/dev/null 2>&1; do sleep 0.1; done
}
trap '[ -n "$reg_pid" ] && kill $reg_pid; stop_dockerd; rm -rf /tmp/dkb-*' EXIT
start_registry
skopeo copy -q --dest-tls-verify=false --dest-compress docker-archive:"$ARCHIVE" "docker://$R/bench/image:1"
clean_podman() { $P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/rp" /tmp/rpx; }
export -f clean_podman; export P B

# The plain lower bound: fetch every layer blob in parallel, decompress and unpack it into its own directory.
manifest=$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/bench/image/manifests/1")
layers=$(echo "$manifest" | python3 -c 'import json,sys; print(" ".join(l["digest"] for l in json.load(sys.stdin)["layers"]))')
cat > "$B/plain-pull.sh" <<EOF
#!/usr/bin/env bash
set -e
D=\${PLAIN:-$B/plain}
mkdir -p \$D
for d in $layers; do
  ( mkdir -p \$D/\$d && curl -sf http://$R/v2/bench/image/blobs/\$d | gzip -d | tar -x -C \$D/\$d ) &
done
wait
EOF
chmod +x "$B/plain-pull.sh"

time_cmd() { bash -c "$1" >/dev/null 2>&1; sync; local t0 t1; t0=$(date +%s.%N); bash -c "$2" >/dev/null 2>&1 || { echo "failed: $2" >&2; exit 1; }; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m() { printf '%s\n' "$@" | median; }

a=(); b=(); c=(); k=()
for i in $(seq "$RUNS"); do
  a+=("$(time_cmd "true" "$S --root $T/strata-$i pull -q $R/bench/image:1")")
  start_dockerd "$i"
  k+=("$(time_cmd "true" "/usr/bin/docker pull -q $R/bench/image:1")")
  stop_dockerd
  b+=("$(time_cmd "true" "podman --root $T/podman-$i --runroot /tmp/rpx-$i --storage-driver overlay pull -q --tls-verify=false $R/bench/image:1")")
  c+=("$(time_cmd "true" "PLAIN=$T/plain-$i $B/plain-pull.sh")")
done
ma=$(m "${a[@]}"); mb=$(m "${b[@]}"); mc=$(m "${c[@]}"); mk=$(m "${k[@]}")
echo "runs: strata ${a[*]} | docker ${k[*]} | podman ${b[*]} | plain ${c[*]}" >&2
# Where strata's time goes: one more pull, untimed, with STRATA_TRACE's per-layer stages.
sync
STRATA_TRACE=1 NO_COLOR=1 $S --root "$T/strata-trace" pull -q "$R/bench/image:1" 2>"$B/trace.log" >/dev/null
for i in $(seq "$RUNS"); do podman --root "$T/podman-$i" --runroot "/tmp/rpx-$i" system reset -f >/dev/null 2>&1 || true; rm -rf "/tmp/rpx-$i"; done
rm -rf "$T"

# Push: both stores hold the pulled image; each run goes to a fresh, empty registry.
rm -rf "$B/rs"; $S --root "$B/rs" pull -q "$R/bench/image:1" >/dev/null
clean_podman; $P pull -q --tls-verify=false "$R/bench/image:1" >/dev/null
d=(); e=()
for i in $(seq "$RUNS"); do
  start_registry
  d+=("$(time_cmd "true" "$S --root $B/rs push -q $R/bench/image:1 $R/bench/pushed:$i")")
  start_registry
  e+=("$(time_cmd "true" "$P push -q --tls-verify=false $R/bench/image:1 $R/bench/pushed:$i")")
done
md=$(m "${d[@]}"); me=$(m "${e[@]}")
row() { printf '| %s | %.2f s | %.2f s | %.2fx | %.2fx |\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)" "$(echo "$3 / $2" | bc -l)"; }
echo "| registry (median of $RUNS) | strata | peer | strata / peer | peer / strata |"
echo "|---|---|---|---|---|"
row "pull, fresh store (vs Docker 20.10 pull)" "$ma" "$mk"
row "pull, fresh store (vs podman pull)" "$ma" "$mb"
row "pull, fresh store (vs the lower bound: curl \\| gzip -d \\| tar -x, layers in parallel)" "$ma" "$mc"
row "push to an empty registry (vs podman push)" "$md" "$me"
echo
echo "strata pull, per layer (one traced run, STRATA_TRACE=1; seconds; receive to inflate on one thread, diff-ID hash to file write on the other):"
echo
echo "| layer | blob MB | tar MB | wall | receive | blob hash | blob write | inflate | diff-ID hash | tar parse, file creation, metadata | file write | applying thread waiting for the tar | install |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
python3 - "$B/trace.log" <<'PY'
import re, sys
for line in open(sys.argv[1]):
    m = re.search(r"layer sha256:([0-9a-f]{12}).*?: blob ([0-9.]+) MB, tar ([0-9.]+) MB: wall ([0-9.]+) s; (.*)", line)
    if m:
        stages = re.findall(r"([0-9.]+)", m.group(5))
        print("| " + " | ".join(list(m.groups()[:4]) + stages) + " |")
PY
