#!/usr/bin/env python3
"""Write a ~150 MB, 4-layer docker-archive from directories of this host
(real files: many small, some large), for the load/save/unpack benchmarks.
Usage: make-image.py OUT_DIR"""
import hashlib, io, json, os, sys, tarfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
# (source dir, path inside the image, byte budget)
layers_src = [
    ("/usr/lib/python3", "usr/lib/python3", 40_000_000),
    ("/usr/share/locale", "usr/share/locale", 35_000_000),
    ("/usr/include", "usr/include", 40_000_000),
    ("/usr/lib/gcc", "usr/lib/gcc", 40_000_000),
]

def layer_tar(src, dst, budget):
    path = os.path.join(out, hashlib.sha256(src.encode()).hexdigest()[:12] + ".tar")
    used = 0
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            rel = os.path.relpath(root, src)
            arc_dir = dst if rel == "." else os.path.join(dst, rel)
            t.add(root, arcname=arc_dir, recursive=False)
            for f in sorted(files):
                p = os.path.join(root, f)
                if not os.path.isfile(p) or os.path.islink(p):
                    continue
                size = os.path.getsize(p)
                if used + size > budget:
                    continue
                used += size
                t.add(p, arcname=os.path.join(arc_dir, f), recursive=False)
    return path

paths = [layer_tar(*l) for l in layers_src]
diff_ids = []
for p in paths:
    h = hashlib.sha256(open(p, "rb").read()).hexdigest()
    diff_ids.append("sha256:" + h)
config = json.dumps({
    "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
    "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"COPY {s} /{d}"} for s, d, _ in layers_src],
}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
with tarfile.open(os.path.join(out, "image.tar"), "w") as t:
    def put(name, data=None, path=None):
        if path:
            t.add(path, arcname=name)
        else:
            ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    put(config_name, config)
    names = []
    for p, d in zip(paths, diff_ids):
        n = d[7:] + ".tar"; names.append(n); put(n, path=p)
    put("manifest.json", json.dumps([{"Config": config_name, "RepoTags": ["bench/image:1"], "Layers": names}]).encode())
for p in paths:
    print(p)
