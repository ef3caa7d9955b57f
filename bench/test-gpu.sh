#!/bin/sh
# test-gpu.sh — `npm run test:gpu`: one command for a GPU machine, sized for 10 minutes in all there.
#  1. builds the native code with TAILOR_CUDA=ON (kernels for this GPU's architecture: native/test/gpu-arch.sh;
#     on a GPU machine no emulator build, whose tests skip there) and the TypeScript;
#  2. runs the CUDA tests (dist/test/cuda.test.js: engine info, the backend option, tailor_cudacheck on the
#     GPU, LoRA training on the GPU; the emulator's rows skip, as every npm test runs them);
#  3. runs the GPU benchmark (dist/bench/gpu-bench.js: matrix-product throughput against the bf16 peak, and
#     LoRA training and the importance pass against PyTorch on the same GPU), printing the tables and writing
#     them to out/gpu-bench/ (and $OUT when it is set); the whole log goes to out/test-gpu.log (and $OUT);
#  4. while time is left before TEST_GPU_DEADLINE (560 s from the start), what gpu-check.sh adds: the 7B memory
#     plan against the allocator's accounting, then compute-sanitizer memcheck over the kernel rows.
#
# Without a usable CUDA device the tests skip their GPU parts (visibly) and the benchmark prints
# "no CUDA device: … — benchmark skipped": the exit status is the tests'. With a device the benchmark runs
# even when a test failed (a GPU's time is scarce; the log says the tests failed), and the exit status is
# the tests' failure, else the benchmark's.
#
# A GPU machine without Node or node_modules (the device tool sends the repository alone): run
# `sh bench/gpu-pack.sh` here first and carry .gpu-pack and dist; this script then unpacks Node, links the
# packed node_modules, builds the native code with plain CMake (as cmake-js would) and uses the dist/ that
# came along. TEST_GPU_NO_BUILD=1 skips step 1 (a rerun on a machine that has built already).
set -u
cd "$(dirname "$0")/.." || exit 1
start=$(date +%s)
mkdir -p out
LOG=out/test-gpu.log
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
elapsed() { echo "$(( $(date +%s) - start )) s"; }
# seconds left before TEST_GPU_DEADLINE (560 from the start, under a lent machine's 600-second call): every step's
# timeout is cut to it, so that the logs reach $OUT before the call is killed whatever hangs
left() { echo $(( ${TEST_GPU_DEADLINE:-560} - ($(date +%s) - start) )); }
# a step's timeout: its own limit ($1 s), or what is left before the deadline if less (at least 10 s)
limit() { l=$(left); [ "$l" -lt "$1" ] && echo $(( l > 10 ? l : 10 )) || echo "$1"; }
# the logs go to $OUT however the script ends (a failed or stopped build's log most of all)
copy_out() {
  if [ -n "${OUT:-}" ] && mkdir -p "$OUT"; then
    cp "$LOG" "$OUT/test-gpu.log" 2>/dev/null
    cp out/test-gpu-build.log "$OUT/test-gpu-build.log" 2>/dev/null
    cp out/test-gpu-memcheck.log "$OUT/test-gpu-memcheck.log" 2>/dev/null
  fi
  return 0
}
trap copy_out EXIT

# ---- Node: the one on PATH, else the packed one ----
if ! command -v node >/dev/null 2>&1; then
  if [ -f .gpu-pack/node.xz ]; then
    mkdir -p /tmp/tailor-node/bin
    if ! xz -dc .gpu-pack/node.xz >/tmp/tailor-node/bin/node 2>/dev/null; then
      python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('.gpu-pack/node.xz'), open('/tmp/tailor-node/bin/node', 'wb'))" || exit 1
    fi
    chmod +x /tmp/tailor-node/bin/node
    PATH=/tmp/tailor-node/bin:$PATH
    export PATH
    say "== node $(node --version) from .gpu-pack/node.xz"
  else
    say "== no node on PATH and no .gpu-pack/node.xz: run 'sh bench/gpu-pack.sh' on a development machine and carry .gpu-pack and dist"
    exit 1
  fi
fi
# ---- node_modules: the checkout's, else the packed subset (a worktree's node_modules link dangles on another machine) ----
if [ ! -f node_modules/node-addon-api/package.json ] && [ -d .gpu-pack/node_modules ]; then
  [ -L node_modules ] && rm -f node_modules
  [ -e node_modules ] || ln -s .gpu-pack/node_modules node_modules
  say "== node_modules: .gpu-pack/node_modules"
fi
# ---- the shared data: $TAILOR_SHARED, else ../shared, else .gpu-pack/shared or a shared/ inside the checkout,
# else the bundled stories260K alone (then the CLI's eval test lacks the story_cloze data) ----
if [ -z "${TAILOR_SHARED:-}" ] && [ ! -f ../shared/models/stories260K-hf/config.json ]; then
  if [ -f .gpu-pack/shared/models/stories260K-hf/config.json ]; then
    TAILOR_SHARED="$PWD/.gpu-pack/shared"
  elif [ -f shared/models/stories260K-hf/config.json ]; then
    TAILOR_SHARED="$PWD/shared"
  else
    TAILOR_SHARED="$PWD/out/shared-fallback"
    mkdir -p "$TAILOR_SHARED/models"
    [ -e "$TAILOR_SHARED/models/stories260K-hf" ] || ln -s "$PWD/resources/models/stories260K" "$TAILOR_SHARED/models/stories260K-hf"
  fi
  export TAILOR_SHARED
  say "== no ../shared beside this checkout: TAILOR_SHARED=$TAILOR_SHARED"
fi

# ---- 1. build ----
. native/test/gpu-arch.sh  # CUDA_ARCHS: this GPU's architecture only (the lent minutes are few)
# the tests check engineInfo's architectures against what this build asked for, not the shipped five
TAILOR_TEST_CUDA_ARCHS=$CUDA_ARCHS
export TAILOR_TEST_CUDA_ARCHS
# no emulator build where a GPU is (its tests skip under TAILOR_TEST_GPU=1); a development machine without one
# keeps it, so that running this script there leaves its build as npm test expects it
CUEMU=ON
nvidia-smi -L >/dev/null 2>&1 && CUEMU=OFF
if [ "${TEST_GPU_NO_BUILD:-0}" = 1 ]; then
  say "== build skipped (TEST_GPU_NO_BUILD=1)"
else
  if command -v npm >/dev/null 2>&1 && [ -f node_modules/cmake-js/package.json ]; then
    say "== build: npm run build:native -- --CDTAILOR_CUDA=ON --CDCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS --CDTAILOR_CUEMU=$CUEMU && npm run build:ts"
    build_with() {
      (timeout "$(limit 300)" npm run build:native -- --CDTAILOR_CUDA=ON "--CDCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS" "--CDTAILOR_CUEMU=$CUEMU" >out/test-gpu-build.log 2>&1 &&
        timeout "$(limit 120)" npm run build:ts >>out/test-gpu-build.log 2>&1
        echo $? >out/.test-gpu-rc)
    }
  else
    # plain CMake with what cmake-js passes (N-API headers from node-api-headers); dist/ came with the pack
    [ -f dist/test/cuda.test.js ] || { say "== dist/ is missing and there is no npm to build it: carry dist (sh bench/gpu-pack.sh)"; exit 1; }
    GEN=""
    command -v ninja >/dev/null 2>&1 && GEN="-G Ninja"
    say "== build: cmake (TAILOR_CUDA=ON, architectures $CUDA_ARCHS, no npm here), nvcc: $(nvcc --version 2>/dev/null | tail -1)"
    build_with() {
      # shellcheck disable=SC2086
      (cmake -S native -B native/build $GEN -DCMAKE_BUILD_TYPE=Release -DTAILOR_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS" "-DTAILOR_CUEMU=$CUEMU" -DCMAKE_JS_VERSION=8.0.0 \
        "-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$PWD/native/build/Release" "-DCMAKE_JS_INC=$PWD/node_modules/node-api-headers/include" \
        -DCMAKE_JS_SRC= -DCMAKE_JS_LIB= -DCMAKE_CXX_FLAGS=-DBUILDING_NODE_EXTENSION >out/test-gpu-build.log 2>&1 &&
        timeout "$(limit 300)" cmake --build native/build -j "$(nproc)" >>out/test-gpu-build.log 2>&1; echo $? >out/.test-gpu-rc)
    }
  fi
  build_with
  rc=$(cat out/.test-gpu-rc)
  if [ "$rc" -ne 0 ]; then
    tail -40 out/test-gpu-build.log | tee -a "$LOG"
    if [ "$rc" -eq 124 ]; then say "== build stopped by its time limit (exit 124; out/test-gpu-build.log; a rerun goes on from what it built)"
    else say "== build FAILED (exit $rc; out/test-gpu-build.log)"; fi
    exit 1
  fi
  grep "Tailor:" out/test-gpu-build.log | tee -a "$LOG"
  say "== built ($(elapsed))"
fi

# cuBLASLt is opened at run time: the system's, else PyTorch's (the library the comparison's other side uses)
. native/test/find-cublaslt.sh
say "== cuBLASLt: $CUBLASLT_NOTE"

# ---- 2. the CUDA tests ----
say "== CUDA tests (node --test dist/test/cuda.test.js)"
# the GPU's tests only: the emulator rows (minutes of CPU, and run by every npm test) skip, saying so
# (TAILOR_TEST_GPU=1); a hung kernel must not eat the session
(TAILOR_TEST_GPU=1 timeout "$(limit 300)" node --test --test-reporter=spec dist/test/cuda.test.js 2>&1; echo $? >out/.test-gpu-rc) | tee -a "$LOG"
trc=$(cat out/.test-gpu-rc)
say "== CUDA tests: $([ "$trc" -eq 0 ] && echo passed || echo "FAILED (exit $trc)") ($(elapsed) so far)"

# ---- 3. the GPU benchmark ----
say "== GPU benchmark (node dist/bench/gpu-bench.js)"
(timeout "$(limit 360)" node dist/bench/gpu-bench.js "$@" 2>&1; echo $? >out/.test-gpu-rc) | tee -a "$LOG"
brc=$(cat out/.test-gpu-rc)
rm -f out/.test-gpu-rc
bench="ok"
[ "$brc" -ne 0 ] && bench="FAILED (exit $brc)"
[ "$brc" -eq 124 ] && bench="stopped at the deadline (exit 124; the parts it finished are in out/gpu-bench/ and \$OUT)"
tail -5 "$LOG" | grep -q "benchmark skipped$" && bench="skipped (no CUDA device)"

# ---- 4. what gpu-check.sh adds, while the session's time lasts (TEST_GPU_DEADLINE seconds from the start,
# default 560, under a lent machine's 600-second call): the memory plan against the allocator's accounting
# on a LLaMA-7B-shaped model, then compute-sanitizer's memcheck over the kernel rows. A GPU lent once gets
# everything from this one call; each part is skipped, saying so, when too little time is left ----
extras=""
CHECK=native/build/tailor_cudacheck
if [ "$bench" != "skipped (no CUDA device)" ] && [ -x "$CHECK" ]; then
  if [ "$(left)" -ge 90 ]; then
    say "== memory plan (docs/memory-plan.md) against the allocator's accounting: LLaMA-7B shape, bf16 weights ($(left) s left)"
    (timeout "$(( $(left) - 20 ))" "$CHECK" --memory-plan 7b 2>&1; echo $? >out/.test-gpu-rc) | tee -a "$LOG"
    extras="$extras memory plan: exit $(cat out/.test-gpu-rc);"
    rm -f out/.test-gpu-rc
  else
    say "== memory plan skipped: $(left) s left"
    extras="$extras memory plan: skipped;"
  fi
  if ! command -v compute-sanitizer >/dev/null 2>&1; then
    extras="$extras memcheck: no compute-sanitizer;"
  elif [ "$(left)" -ge 90 ]; then
    say "== compute-sanitizer --tool memcheck over the kernel rows ($(left) s left)"
    timeout "$(( $(left) - 10 ))" compute-sanitizer --tool memcheck --print-limit 20 "$CHECK" >out/test-gpu-memcheck.log 2>&1
    mrc=$?
    grep -E "ERROR SUMMARY|=========|checks, |Device not supported" out/test-gpu-memcheck.log | head -60 | tee -a "$LOG"
    extras="$extras memcheck: exit $mrc;"
    if [ "$mrc" -ne 0 ] && [ "$mrc" -ne 124 ] && ! grep -q "Device not supported" out/test-gpu-memcheck.log; then bench="$bench, memcheck FAILED"; brc=1; fi
  else
    say "== memcheck skipped: $(left) s left"
    extras="$extras memcheck: skipped;"
  fi
fi
say "== test:gpu done in $(elapsed): tests $([ "$trc" -eq 0 ] && echo passed || echo FAILED), benchmark $bench${extras:+;$extras} (log: $LOG)"
[ "$trc" -ne 0 ] && exit "$trc"
exit "$brc"
