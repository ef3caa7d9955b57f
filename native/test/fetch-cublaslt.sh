#!/bin/sh
# fetch-cublaslt.sh — real cuBLASLt libraries for the tests of a machine without a GPU, from the Debian archive's
# non-free component: CUDA 11.8's libcublaslt11 (Debian 12) and CUDA 12.4's libcublaslt12 (Debian 13), each with
# the two headers that declare it (cublasLt.h, cublas_api.h, from that release's nvidia-cuda-dev), into
# .tmp/cublaslt/<major>/{lib,include}. apt fetches them (checked against the archive's signed index) with a
# private state in .tmp/apt, removed after: nothing is installed and the system's apt sources are not touched.
# test/cuda-emu.test.ts compiles our declarations (native/cuda/cublaslt_api.h) against each header and opens
# each library in the emulator addon. Needs apt and Debian's archive keyring on x86-64; elsewhere it says so
# and exits 0 (the test then skips, saying why).
set -eu
cd "$(dirname "$0")/../.."
OUT=.tmp/cublaslt
# major, Debian release, library package
RELEASES="11 bookworm libcublaslt11
12 trixie libcublaslt12"

complete() { [ -f "$OUT/$1/lib/libcublasLt.so.$1" ] && [ -f "$OUT/$1/include/cublasLt.h" ] && [ -f "$OUT/$1/include/cublas_api.h" ]; }
missing=$(echo "$RELEASES" | while read -r major release pkg; do complete "$major" || echo "$major"; done)
if [ -z "$missing" ]; then
  echo "$RELEASES" | while read -r major release pkg; do echo "cuBLASLt $major: already in $OUT/$major ($(cat "$OUT/$major/VERSION"))"; done
  exit 0
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
arch=$(dpkg --print-architecture 2>/dev/null || true)
if [ "$arch" != amd64 ] || [ ! -f "$keyring" ] || ! command -v apt-get >/dev/null; then
  echo "cuBLASLt: not fetched (needs apt and $keyring on amd64; this is ${arch:-not dpkg})"
  exit 0
fi

mkdir -p .tmp "$OUT"
APT=$(pwd)/.tmp/apt
rm -rf "$APT"
mkdir -p "$APT/etc/parts" "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
echo "$RELEASES" | while read -r major release pkg; do
  echo "deb [signed-by=$keyring] http://deb.debian.org/debian $release non-free"
done >"$APT/etc/sources.list"
apt_private() {
  apt-get -q -o Dir::Etc::SourceList="$APT/etc/sources.list" -o Dir::Etc::SourceParts="$APT/etc/parts" \
    -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" "$@"
}
apt_private update >/dev/null

echo "$RELEASES" | while read -r major release pkg; do
  complete "$major" && continue
  debs="$APT/debs/$major"
  mkdir -p "$debs"
  (cd "$debs" && apt_private download "$pkg/$release" "nvidia-cuda-dev/$release" >/dev/null)
  # unpacked into a fresh folder, which becomes $OUT/<major> only when complete
  tmp=$(mktemp -d "$OUT/.$major.XXXXXX")
  mkdir -p "$tmp/lib" "$tmp/include" "$tmp/deb"
  lt_deb=$(ls "$debs"/"$pkg"_*.deb)
  dev_deb=$(ls "$debs"/nvidia-cuda-dev_*.deb)
  dpkg-deb -x "$lt_deb" "$tmp/deb"
  cp -P "$tmp"/deb/usr/lib/x86_64-linux-gnu/libcublasLt.so."$major"* "$tmp/lib/"
  dpkg-deb --fsys-tarfile "$dev_deb" | tar -x -C "$tmp/deb" ./usr/include/cublasLt.h ./usr/include/cublas_api.h
  cp "$tmp/deb/usr/include/cublasLt.h" "$tmp/deb/usr/include/cublas_api.h" "$tmp/include/"
  echo "$pkg $(dpkg-deb -f "$lt_deb" Version) ($release), headers from nvidia-cuda-dev $(dpkg-deb -f "$dev_deb" Version)" >"$tmp/VERSION"
  rm -rf "$tmp/deb" "$OUT/$major" "$debs"
  mv "$tmp" "$OUT/$major"
  echo "cuBLASLt $major: $(cat "$OUT/$major/VERSION") in $OUT/$major"
done
rm -rf "$APT"
