#!/bin/sh
# Builds the enrollgraph container image from a binary built outside (issue 16):
#   cargo build --release && scripts/build-image.sh [BINARY] [TAG]
# BINARY defaults to target/release/enrollgraph, TAG to localhost/enrollgraph:latest.
# The context holds the binary, exactly the libraries `ldd` lists for it (with the loader),
# /etc/passwd and /etc/group for the uid 10001 and an empty /data; Containerfile copies it
# into an image FROM scratch, so nothing is pulled from a registry.
# ENROLLGRAPH_IMAGE_TOOL picks the builder (default: podman, else docker).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${1:-$root/target/release/enrollgraph}
tag=${2:-localhost/enrollgraph:latest}
tool=${ENROLLGRAPH_IMAGE_TOOL:-$(command -v podman || command -v docker || true)}
[ -x "$binary" ] || { echo "build-image: no binary at $binary (cargo build --release first)" >&2; exit 1; }
[ -n "$tool" ] || { echo "build-image: neither podman nor docker is installed" >&2; exit 1; }
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
fs=$ctx/rootfs
mkdir -p "$fs/etc" "$fs/tmp" "$ctx/volume/data"
cp "$binary" "$fs/enrollgraph"
# Every library the dynamic loader resolves, and the loader itself, at their own paths.
ldd "$binary" | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]*ld-linux/ { print $1 }' | while read -r lib; do
    mkdir -p "$fs$(dirname "$lib")"
    cp -L "$lib" "$fs$lib"
done
printf 'root:x:0:0:root:/:/sbin/nologin\nenrollgraph:x:10001:10001:enrollgraph:/data:/sbin/nologin\n' >"$fs/etc/passwd"
printf 'root:x:0:\nenrollgraph:x:10001:\n' >"$fs/etc/group"
chmod 700 "$ctx/volume/data"
chmod 1777 "$fs/tmp"
cp "$root/Containerfile" "$ctx/Containerfile"
# --format docker keeps the HEALTHCHECK (the OCI image format has none).
case "$tool" in
*podman) "$tool" build --format docker -t "$tag" -f "$ctx/Containerfile" "$ctx" ;;
*) "$tool" build -t "$tag" -f "$ctx/Containerfile" "$ctx" ;;
esac
echo "built $tag"
