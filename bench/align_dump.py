#!/usr/bin/env python3
"""The reference recipe's aligned crops (../shared/bench/refverify.py: OpenCV YuNet and
FaceRecognizerSF.alignCrop) for facelive's alignment test: for each image given, the
landmarks alignCrop was fed (original pixels) and the 112x112 crop it made, as raw RGB.

usage: align_dump.py MODELS_DIR OUT_DIR IMAGE...
writes OUT_DIR/landmarks.csv (image,x0,y0,...,x4,y4) and OUT_DIR/<n>.rgb per image (n its
row), into a scratch folder: crops are face pixels, never kept in the repository.
"""
import csv, os, sys

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.environ.get("FACELIVE_SHARED", "../shared"), "bench"))
from refverify import Verifier  # noqa: E402


def main():
    models, out, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    v = Verifier(models, "mobilefacenet.onnx", "imagenet", 1)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "landmarks.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        for n, path in enumerate(images):
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            H, W = img.shape[:2]
            s = min(1.0, 640.0 / max(H, W))
            small = cv2.resize(img, (max(1, int(W * s)), max(1, int(H * s))), interpolation=cv2.INTER_AREA) if s < 1 else img
            v.det.setInputSize((small.shape[1], small.shape[0]))
            _, faces = v.det.detect(small)
            if faces is None or len(faces) == 0:
                continue
            f = max(faces, key=lambda f: f[2] * f[3]).copy()
            f[:14] /= s
            crop = v.aligner.alignCrop(img, f)[..., ::-1]
            np.ascontiguousarray(crop).tofile(os.path.join(out, f"{n}.rgb"))
            w.writerow([path, n] + [f"{x:.6f}" for x in f[4:14]])


if __name__ == "__main__":
    main()
