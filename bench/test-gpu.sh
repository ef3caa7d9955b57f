#!/bin/sh
# test-gpu.sh — the second half of `npm run test:gpu` (which builds first: the native code with
# TAILOR_CUDA=ON, then the TypeScript): the CUDA tests (dist/test/cuda.test.js: engine info, the backend
# option, tailor_cudacheck on the GPU, the kernels on the CPU emulator, LoRA training on the GPU), then the
# GPU benchmark (dist/bench/gpu-bench.js: matrix-product throughput against the bf16 peak, and LoRA training
# and the importance pass against PyTorch on the same GPU), printing the tables and writing them to
# out/gpu-bench/ (and $OUT when it is set). Sized for 10 minutes in all on a GPU machine (the build is 1-2).
#
# Without a usable CUDA device the tests skip their GPU parts (visibly) and the benchmark prints
# "no CUDA device: … — benchmark skipped": the exit status is the tests'. With a device the benchmark runs
# even when a test failed (a GPU's time is scarce; the report says the tests failed), and the exit status
# is the tests' failure, else the benchmark's.
#
# A checkout without ../shared (a GPU machine gets the repository alone) runs the tests on the bundled copy
# of stories260K (resources/models/stories260K, the same files as shared/models/stories260K-hf).
set -u
cd "$(dirname "$0")/.." || exit 1
start=$(date +%s)
mkdir -p out
LOG=out/test-gpu.log
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }

# the shared data: $TAILOR_SHARED, else ../shared, else a shared/ inside the checkout (what a GPU machine
# gets: the repository travels, ../shared does not), else the bundled stories260K alone (the CLI's eval
# test then misses the story_cloze data)
if [ -z "${TAILOR_SHARED:-}" ] && [ ! -f ../shared/models/stories260K-hf/config.json ]; then
  if [ -f shared/models/stories260K-hf/config.json ]; then
    export TAILOR_SHARED="$PWD/shared"
  else
    fb="$PWD/out/shared-fallback"
    mkdir -p "$fb/models"
    [ -e "$fb/models/stories260K-hf" ] || ln -s "$PWD/resources/models/stories260K" "$fb/models/stories260K-hf"
    export TAILOR_SHARED="$fb"
  fi
  say "== no ../shared beside this checkout: TAILOR_SHARED=$TAILOR_SHARED"
fi

say "== CUDA tests (node --test dist/test/cuda.test.js)"
# the emulator rows take ~1.5 min on 2 cores; a hung kernel must not eat the session
(timeout 300 node --test --test-reporter=spec dist/test/cuda.test.js 2>&1; echo $? >out/.test-gpu-rc) | tee -a "$LOG"
trc=$(cat out/.test-gpu-rc)
say "== CUDA tests: $([ "$trc" -eq 0 ] && echo passed || echo "FAILED (exit $trc)") ($(( $(date +%s) - start )) s so far)"

say "== GPU benchmark (node dist/bench/gpu-bench.js)"
(timeout 360 node dist/bench/gpu-bench.js "$@" 2>&1; echo $? >out/.test-gpu-rc) | tee -a "$LOG"
brc=$(cat out/.test-gpu-rc)
rm -f out/.test-gpu-rc
bench="ok"
[ "$brc" -ne 0 ] && bench="FAILED (exit $brc)"
tail -5 "$LOG" | grep -q "benchmark skipped$" && bench="skipped (no CUDA device)"
say "== test:gpu done in $(( $(date +%s) - start )) s: tests $([ "$trc" -eq 0 ] && echo passed || echo FAILED), benchmark $bench (log: $LOG)"
[ -n "${OUT:-}" ] && cp "$LOG" "$OUT/test-gpu.log" 2>/dev/null
[ "$trc" -ne 0 ] && exit "$trc"
exit "$brc"
