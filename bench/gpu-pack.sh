#!/bin/sh
# gpu-pack.sh — run on a development machine (Node, node_modules and ../shared present) before a GPU session:
# fills .gpu-pack/ (gitignored) with what `sh bench/test-gpu.sh` needs on a GPU machine that has the CUDA
# toolkit, CMake, ninja and Python/PyTorch but no Node, no node_modules and no ../shared:
#   .gpu-pack/node.xz          this machine's node binary, xz-compressed (~24 MB)
#   .gpu-pack/node_modules/    what the tests and the benchmark load at run time (@huggingface/tokenizers,
#                              better-sqlite3 trimmed to its compiled addon, bindings, file-uri-to-path, ws) and
#                              what the native build includes (node-addon-api, node-api-headers)
#   .gpu-pack/shared/          models/stories260K-hf and datasets/story_cloze from ../shared (the tests' data)
# and compiles the TypeScript into dist/. The GPU machine builds the native code itself (plain CMake, CUDA ON).
# Then, with the device tool:  run(command: "sh bench/test-gpu.sh", carry: [".gpu-pack", "dist"], timeout_s: 600)
# (about 30 MB travel). Nothing here is needed where `npm run test:gpu` works as it is.
set -eu
cd "$(dirname "$0")/.."
P=.gpu-pack
rm -rf "$P"
mkdir -p "$P/node_modules/@huggingface" "$P/shared/models" "$P/shared/datasets"

npm run build:ts >/dev/null
echo "dist/: compiled ($(du -sh dist | cut -f1))"

NODE=$(command -v node)
xz -T0 -6 -c "$NODE" >"$P/node.xz"
echo "node $($NODE --version) from $NODE: $(du -h "$P/node.xz" | cut -f1) compressed"

for m in @huggingface/tokenizers better-sqlite3 bindings file-uri-to-path ws node-addon-api node-api-headers; do
  [ -d "node_modules/$m" ] || { echo "node_modules/$m is missing (npm install first)"; exit 1; }
  cp -rL "node_modules/$m" "$P/node_modules/$m"
done
# better-sqlite3 at run time: package.json, lib/ and the compiled addon (the sources and objects stay here)
b="$P/node_modules/better-sqlite3"
rm -rf "$b/deps" "$b/src" "$b/build/Release/obj" "$b/build/Release/obj.target" "$b/build/Release/sqlite3.a" "$b/build/Release/test_extension.node" \
  "$b/build/Release/.deps" "$b/build/deps" "$b/build/Release/deps" 2>/dev/null || true
echo "node_modules: $(du -sh "$P/node_modules" | cut -f1)"

S=${TAILOR_SHARED:-../shared}
cp -rL "$S/models/stories260K-hf" "$P/shared/models/"
cp -rL "$S/datasets/story_cloze" "$P/shared/datasets/"
echo "shared/: $(du -sh "$P/shared" | cut -f1) (stories260K-hf, story_cloze)"
echo "total to carry: $(du -shc "$P" dist | tail -1 | cut -f1) — carry [\".gpu-pack\", \"dist\"], command: sh bench/test-gpu.sh"
