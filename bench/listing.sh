#!/usr/bin/env bash
# Listing a full store (docs/BENCHMARKS.md, "Listing a full store"), one go on one machine:
#   `ps -a` and `images` on a store with 200 images (one small layer each, on a shared busybox
#   layer) and 500 created containers: strata vs podman (overlay, runc). Interleaved, median of RUNS.
# Needs podman, busybox-static, python3; root; `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-/var/tmp/strata-bench}
RUNS=${RUNS:-9}
IMAGES=${IMAGES:-200}
CONTAINERS=${CONTAINERS:-500}
S="$PWD/target/release/strata --root $B/ls"
P="podman --root $B/lp --runroot /tmp/pbl --storage-driver overlay"
mkdir -p "$B"
rm -rf "$B/ls"; $P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/lp" /tmp/pbl
# One docker-archive holding IMAGES images: busybox plus a one-file layer of their own.
python3 - "$B/many.tar" "$IMAGES" <<'PY'
import hashlib, io, json, sys, tarfile
out, n = sys.argv[1], int(sys.argv[2])
def layer(files):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, mode in files:
            i = tarfile.TarInfo(name); i.size = len(data); i.mode = mode; i.mtime = 0
            t.addfile(i, io.BytesIO(data))
    return b.getvalue()
bb = open("/bin/busybox", "rb").read()
base = layer([("bin/busybox", bb, 0o755)])
sha = lambda d: hashlib.sha256(d).hexdigest()
with tarfile.open(out, "w") as t:
    def put(name, data):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    put(f"{sha(base)}/layer.tar", base)
    manifest = []
    for k in range(n):
        top = layer([(f"app/{k}.txt", f"image {k}\n".encode(), 0o644)])
        put(f"{sha(top)}/layer.tar", top)
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/busybox", "true"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(base), "sha256:" + sha(top)]},
            "history": [{"created_by": "base"}, {"created_by": f"app {k}"}]}).encode()
        put(f"{sha(cfg)}.json", cfg)
        manifest.append({"Config": f"{sha(cfg)}.json", "RepoTags": [f"localhost/many/app:{k}"],
                         "Layers": [f"{sha(base)}/layer.tar", f"{sha(top)}/layer.tar"]})
    put("manifest.json", json.dumps(manifest).encode())
PY
$S load -q -i "$B/many.tar" >/dev/null
$P load -q -i "$B/many.tar" >/dev/null
for i in $(seq "$CONTAINERS"); do
  k=$(( i % IMAGES ))
  $S create --name "c$i" "localhost/many/app:$k" >/dev/null
  $P create --name "c$i" "localhost/many/app:$k" >/dev/null
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local t0 t1; t0=$(date +%s.%N); bash -c "$1" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
row() {
  local a=() b=()
  for _ in $(seq "$RUNS"); do a+=("$(t "$S $2")"); b+=("$(t "$P $2")"); done
  local ma mb; ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  printf '| %s | %.3f s | %.3f s | %.1fx |\n' "$1" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
}
echo "| command ($IMAGES images, $CONTAINERS containers; median of $RUNS) | strata | podman | podman / strata |"
echo "|---|---|---|---|"
row "ps -a" "ps -a"
row "images" "images"
row "ps -a -q" "ps -a -q"
row "images -q" "images -q"
$P system reset -f >/dev/null 2>&1 || true; rm -rf "$B/lp" /tmp/pbl "$B/ls"
