#!/usr/bin/env python3
"""Images for bench/explore.sh: a docker-archive in DIR/explore.tar with
`explore:base` (5 layers, 50,000 files: directories of small files, some
overwritten, chmodded and deleted by the upper layers) and `explore:app`
(the same 5 layers and one more), each layer gzip-compressed as a registry
serves it; the layer blobs also as DIR/explore-layer-N.tar.gz."""
import gzip, hashlib, io, json, random, sys, tarfile, os

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rnd = random.Random(5)

def layer(entries):
    """entries: (path, bytes|None for a directory, mode); returns the tar bytes."""
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, data, mode in entries:
            i = tarfile.TarInfo(path)
            i.mtime = 1700000000
            i.mode = mode
            if data is None:
                i.type = tarfile.DIRTYPE
                t.addfile(i)
            else:
                i.size = len(data)
                t.addfile(i, io.BytesIO(data))
    return b.getvalue()

def files(prefix, n, per_dir=100):
    e = []
    for d in range(n // per_dir):
        e.append((f"{prefix}/d{d}", None, 0o755))
        for f in range(per_dir):
            e.append((f"{prefix}/d{d}/f{f}", rnd.randbytes(rnd.randint(0, 4000)), 0o644))
    return e

layers = []
layers.append(layer([("usr", None, 0o755)] + files("usr/share", 20000)))
layers.append(layer([("opt", None, 0o755)] + files("opt/lib", 10000)))
# Overwrites 2,000 files of layer 0, chmods 1,000, adds 7,000.
l2 = [(f"usr/share/d{d}/f{f}", rnd.randbytes(100), 0o644) for d in range(20) for f in range(100)]
l2 += [(f"usr/share/d{d}/f{f}", b"x" * 10, 0o600) for d in range(20, 30) for f in range(100)]
layers.append(layer(l2 + files("srv/data", 7000)))
# Deletes 50 directories of layer 1 (5,000 files) and adds 5,000.
layers.append(layer([(f"opt/lib/.wh.d{d}", b"", 0o644) for d in range(50)] + files("var/cache", 5000)))
layers.append(layer(files("home/app", 5000)))
app_top = layer(files("app/code", 1000))

def gz(b):
    return gzip.compress(b, compresslevel=1, mtime=0)

blobs = {}
for i, l in enumerate(layers + [app_top]):
    z = gz(l)
    blobs[i] = (hashlib.sha256(l).hexdigest(), z)
    with open(f"{out}/explore-layer-{i}.tar.gz", "wb") as f:
        f.write(z)

def config(n):
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{blobs[i][0]}" for i in range(n)]},
        "history": [{"created_by": f"layer {i}"} for i in range(n)]}).encode()

with tarfile.open(f"{out}/explore.tar", "w") as t:
    def add(name, data):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    for i, (_, z) in blobs.items():
        add(f"layer{i}.tar.gz", z)
    manifest = []
    for tag, n in (("explore:base", 5), ("explore:app", 6)):
        c = config(n)
        name = hashlib.sha256(c).hexdigest() + ".json"
        add(name, c)
        manifest.append({"Config": name, "RepoTags": [tag], "Layers": [f"layer{i}.tar.gz" for i in range(n)]})
    add("manifest.json", json.dumps(manifest).encode())
print(f"{out}/explore.tar")
