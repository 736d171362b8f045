#!/usr/bin/env bash
# Assembles the image's root filesystem in OUT: the facelive binary (debug info stripped),
# ONNX Runtime's library with its LICENSE and ThirdPartyNotices.txt (from beside it, as
# scripts/onnxruntime.sh leaves them), the shared libraries both load (found with ldd), the CA bundle
# for image URLs, and a passwd/group naming the non-root user. Nothing else: no shell, no
# package manager. Used by deploy/image.sh (buildah, here) and by the Containerfile's
# build stage, so both images hold the same files.
#
#   deploy/rootfs.sh BINARY LIBONNXRUNTIME OUT
set -euo pipefail
bin=$1 ort=$2 out=$3
uid=65532

rm -rf "$out"
mkdir -p "$out"/usr/local/bin "$out"/usr/lib/facelive "$out"/etc/ssl/certs "$out"/models
strip --strip-debug -o "$out"/usr/local/bin/facelive "$bin"
cp "$ort" "$out"/usr/lib/facelive/libonnxruntime.so
for notice in LICENSE ThirdPartyNotices.txt; do
  cp "$(dirname "$ort")/$notice" "$out/usr/lib/facelive/onnxruntime-$notice"
done

# Every library the binary and ONNX Runtime need, at the path the loader looks for it.
for elf in "$bin" "$ort"; do
  ldd "$elf" | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\/.*ld-linux/ {print $1}'
done | sort -u | while read -r lib; do
  cp -L --parents "$lib" "$out"/
done

cp -L /etc/ssl/certs/ca-certificates.crt "$out"/etc/ssl/certs/
printf 'root:x:0:0:root:/:/sbin/nologin\nfacelive:x:%d:%d:facelive:/:/sbin/nologin\n' $uid $uid > "$out"/etc/passwd
printf 'root:x:0:\nfacelive:x:%d:\n' $uid > "$out"/etc/group
chmod -R go-w "$out"
echo "rootfs: $(du -sh "$out" | cut -f1) in $out" >&2
