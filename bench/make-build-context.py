#!/usr/bin/env python3
"""The build benchmarks' context files (bench/build.sh, bench/build-cache.sh):
2,000 files of 1-8 KiB of random bytes in 20 directories under DIR."""
import os, random, sys

random.seed(6)
root = sys.argv[1]
for d in range(20):
    os.makedirs(f"{root}/d{d:02}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d:02}/f{f:03}.txt", "wb") as fh:
            fh.write(os.urandom(random.randint(1024, 8192)))
