#!/usr/bin/env python3
"""What a JPEG costs at each libjpeg-turbo DCT scale (docs/BENCHMARKS.md).

usage: jpeg_scale.py IMAGE... (with the peer's venv: target/refpeer-venv/bin/python)

Decodes each file in memory with OpenCV's libjpeg-turbo at full, 1/2, 1/4 and 1/8 scale,
one thread, and prints the best and median of 5 runs in ms. At 1/8 scale libjpeg skips
the inverse DCT almost entirely, so that column is close to the entropy decoding alone:
the part every decode of the file pays, at any scale and for any region.
"""
import statistics, sys, time

import cv2
import numpy as np

cv2.setNumThreads(1)
FLAGS = [("1", cv2.IMREAD_COLOR), ("1/2", cv2.IMREAD_REDUCED_COLOR_2),
         ("1/4", cv2.IMREAD_REDUCED_COLOR_4), ("1/8", cv2.IMREAD_REDUCED_COLOR_8)]
for path in sys.argv[1:]:
    data = np.frombuffer(open(path, "rb").read(), np.uint8)
    kind = "progressive" if b"\xff\xc2" in data.tobytes() else "baseline"
    cells = []
    for name, flag in FLAGS:
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            img = cv2.imdecode(data, flag)
            runs.append((time.perf_counter() - t) * 1e3)
        cells.append(f"{name} {min(runs):.0f}/{statistics.median(runs):.0f}")
    h, w = cv2.imdecode(data, cv2.IMREAD_REDUCED_COLOR_8).shape[:2]
    print(f"{path.rsplit('/', 1)[-1]} ({kind}, about {w * 8}x{h * 8}): " + ", ".join(cells) + " ms")
