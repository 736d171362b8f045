#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora from the dev images (never committed: the images
stay in ../shared). Usage: seeds.py DEV_DIR OUT_DIR"""
import base64, json, os, sys

dev, out = sys.argv[1], sys.argv[2]

# Small files covering every path: baseline, progressive, EXIF-rotated, grayscale and
# CMYK JPEG; RGB PNG; header-only, text, tiny, and a 30000x30000 PNG bomb.
IMAGES = [
    "edge/header_only.jpg", "edge/text.png", "edge/no_face_blank.png",
    "edge/tiny_image_40x40.png", "edge/tiny_face.jpg", "edge/exif6_face.jpg",
    "edge/gray.jpg", "edge/cmyk.jpg", "edge/bomb_30000x30000.png", "edge/face.webp",
    "edge/face.gif", "spoof/crop_AksultanMukhanbet_420.png", "live/deepface_img12.jpg",
    "spoof/nuaa_ImposterRaw_0003_01_03_02_10.jpg",
]
# The endpoint and content-type indices of fuzz/src/bin/dialects.rs.
NATIVE, NHN, ACCURA, JCV, SPOOFSENSE, ROBUST, ANTISPOOFING_V3, VERIFY, COMPARE = range(9)
JSON, MULTIPART = 0, 1


def write(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(rel):
    with open(os.path.join(dev, rel), "rb") as f:
        return f.read()


for rel in IMAGES:
    write("ingest", os.path.basename(rel), read(rel))

for rel in ["edge/tiny_face.jpg", "spoof/crop_AksultanMukhanbet_420.png"]:
    b64 = base64.b64encode(read(rel)).decode()
    stem = os.path.splitext(os.path.basename(rel))[0]
    bodies = {
        NATIVE: {"image": {"base64": b64}, "operating_point": "balanced"},
        NHN: {"image": {"bytes": b64}, "spoofingCondition": "strict"},
        JCV: {"images": [{"index": 0, "type": "jpg", "data": b64}], "autoRotate": True},
        SPOOFSENSE: {"data": b64},
        ROBUST: {"data": "data:image/jpeg;base64," + b64},
        VERIFY: {"image": {"base64": b64}, "reference": {"base64": b64}},
        COMPARE: {"sourceImage": {"bytes": b64}, "targetImage": {"bytes": b64}},
    }
    for endpoint, body in bodies.items():
        data = bytes([endpoint, JSON]) + json.dumps(body).encode()
        write("dialects", f"{stem}_{endpoint}.json", data)
    form = (b"--FUZZ\r\nContent-Disposition: form-data; name=\"liveness_image\"; "
            b"filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" + read(rel) + b"\r\n--FUZZ--\r\n")
    write("dialects", f"{stem}_accura.form", bytes([ACCURA, MULTIPART]) + form)
    write("dialects", f"{stem}_native.form", bytes([NATIVE, MULTIPART]) + form.replace(b"liveness_image", b"image"))

for i, url in enumerate([
    "http://169.254.169.254/latest/meta-data/", "https://example.com:11000/a.jpg",
    "http://[64:ff9b::a9fe:a9fe]/", "http://0x7f.1/", "http://[::ffff:10.0.0.1]:80/x",
    "ftp://example.com/a.jpg", "http://[2002:a9fe:a9fe::]/",
]):
    write("url_guard", f"url{i}", url.encode())
for i, addr in enumerate([bytes(16), bytes(10) + b"\xff\xff" + bytes([169, 254, 169, 254]),
                          bytes.fromhex("0064ff9b0000000000000000a9fea9fe")]):
    write("url_guard", f"addr{i}", addr)
