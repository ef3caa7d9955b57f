#!/bin/sh
# fetch-cublaslt.sh — a real cuBLASLt for the tests of a machine without a GPU: Debian 12's libcublaslt11
# (CUDA 11.8, in the archive's non-free component) and, from its nvidia-cuda-dev, the two headers that
# declare it (cublasLt.h, cublas_api.h), into .tmp/cublaslt11/{lib,include}. Fetched with apt from the Debian
# archive, verified by apt against the archive's signed index, and unpacked there: nothing is installed and
# the system's apt sources are not touched (a private apt state in .tmp/apt, removed after).
# test/cuda.test.ts compiles our declarations (native/cuda/cublaslt_api.h) against that header and opens the
# library in the emulator's harness. Anything but Debian 12 on x86-64: says so and exits 0 (the test skips).
set -eu
cd "$(dirname "$0")/../.."
OUT=.tmp/cublaslt11
if [ -f "$OUT/lib/libcublasLt.so.11" ] && [ -f "$OUT/include/cublasLt.h" ] && [ -f "$OUT/include/cublas_api.h" ]; then
  echo "cuBLASLt 11: already in $OUT ($(cat "$OUT/VERSION"))"
  exit 0
fi
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
arch=$(dpkg --print-architecture 2>/dev/null || true)
if [ "$codename" != bookworm ] || [ "$arch" != amd64 ] || ! command -v apt-get >/dev/null; then
  echo "cuBLASLt 11: not fetched (Debian 12 on amd64 only; this is ${codename:-unknown} on ${arch:-unknown})"
  exit 0
fi

mkdir -p .tmp
APT=$(pwd)/.tmp/apt
rm -rf "$APT"
mkdir -p "$APT/etc/parts" "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm non-free" >"$APT/etc/sources.list"
apt_private() {
  apt-get -q -o Dir::Etc::SourceList="$APT/etc/sources.list" -o Dir::Etc::SourceParts="$APT/etc/parts" \
    -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" "$@"
}
apt_private update >/dev/null
(cd "$APT/debs" && apt_private download libcublaslt11 nvidia-cuda-dev >/dev/null)

# unpacked into a fresh folder, which becomes $OUT only when complete
tmp=$(mktemp -d .tmp/cublaslt11.XXXXXX)
mkdir -p "$tmp/lib" "$tmp/include" "$tmp/deb"
lt_deb=$(ls "$APT"/debs/libcublaslt11_*.deb)
dev_deb=$(ls "$APT"/debs/nvidia-cuda-dev_*.deb)
dpkg-deb -x "$lt_deb" "$tmp/deb"
cp -P "$tmp"/deb/usr/lib/x86_64-linux-gnu/libcublasLt.so.11* "$tmp/lib/"
dpkg-deb --fsys-tarfile "$dev_deb" | tar -x -C "$tmp/deb" ./usr/include/cublasLt.h ./usr/include/cublas_api.h
cp "$tmp/deb/usr/include/cublasLt.h" "$tmp/deb/usr/include/cublas_api.h" "$tmp/include/"
echo "libcublaslt11 $(dpkg-deb -f "$lt_deb" Version), headers from nvidia-cuda-dev $(dpkg-deb -f "$dev_deb" Version)" >"$tmp/VERSION"
rm -rf "$tmp/deb" "$OUT"
mv "$tmp" "$OUT"
rm -rf "$APT"
echo "cuBLASLt 11: $(cat "$OUT/VERSION") in $OUT"
