#!/bin/sh
# gpu-check.sh — the CUDA kernels against the CPU backend on a GPU machine, in one command and without Node:
# builds the engine and tailor_cudacheck with plain CMake (machine code for this GPU only, so it builds
# quickly), prints the parity table, the whole-model rows (stories260K and a random GQA model on the CPU
# and on the CUDA backend: logits at every position, 64 greedy tokens, LoRA training, the pruner's
# statistics and picks, bf16 weights against the golden argmax, the caching allocator) and kernel timings, then runs
# the table again (with the random model) under
# compute-sanitizer memcheck on the kernel rows when it is installed (out-of-bounds and misaligned accesses),
# and last the memory plan measured on a LLaMA-7B-shaped random model (tailor_cudacheck --memory-plan 7b).
# Copies everything it prints to $OUT/gpu-check.txt when OUT is set.
# Exit status: tailor_cudacheck's (0 all within tolerance, 1 a failure, 77 no usable CUDA device), or 1
# when memcheck reports errors.
#   sh native/test/gpu-check.sh
#   CUDA_ARCHS="75-real;80-real;86-real;89-real;90" sh native/test/gpu-check.sh   (the shipped list)
#   GPU_CHECK_MEMCHECK=0 sh native/test/gpu-check.sh                               (skip memcheck)
#   GPU_CHECK_MEMPLAN=0 sh native/test/gpu-check.sh                                (skip the 7B memory plan run)
#   TAILOR_CUBLASLT=0 sh native/test/gpu-check.sh                                  (our kernels only: cuBLASLt is opened
#                                                                                    at run time, see native/cuda/lt_library.cu)
#   TAILOR_CUBLASLT=/path/to/libcublasLt.so.12 sh native/test/gpu-check.sh          (that library)
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${GPU_CHECK_BUILD:-native/build-gpu}
LOG=${OUT:+$OUT/gpu-check.txt}
LOG=${LOG:-$BUILD/gpu-check.txt}
mkdir -p "$BUILD" "$(dirname "$LOG")"
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }

. native/test/gpu-arch.sh  # CUDA_ARCHS: this GPU's architecture only (quick to build)
GEN=""
command -v ninja >/dev/null 2>&1 && GEN="-G Ninja"
say "== gpu-check: $(date -u +%FT%TZ), $(uname -m), nvcc: $(nvcc --version 2>/dev/null | tail -1), architectures: $CUDA_ARCHS"
if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L 2>&1 | tee -a "$LOG"; else say "(no nvidia-smi)"; fi

start=$(date +%s)
# configure and build tailor_cudacheck (no cuBLASLt needed: the harness opens it at run time where there is one)
# shellcheck disable=SC2086
if ! cmake -S native -B "$BUILD" $GEN -DCMAKE_BUILD_TYPE=Release -DTAILOR_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS" ${GPU_CHECK_CMAKE_ARGS:-} >"$BUILD/configure.log" 2>&1; then
  tail -40 "$BUILD/configure.log" | tee -a "$LOG"
  say "== gpu-check: configure FAILED"
  exit 1
fi
grep "Tailor:" "$BUILD/configure.log" | tee -a "$LOG"
if ! cmake --build "$BUILD" --target tailor_cudacheck -j "$(nproc)" >"$BUILD/build.log" 2>&1; then
  tail -60 "$BUILD/build.log" | tee -a "$LOG"
  say "== gpu-check: build FAILED"
  exit 1
fi
say "== built in $(( $(date +%s) - start )) s"
# our declarations of cuBLASLt (native/cuda/cublaslt_api.h) against this toolkit's header, where it has one: a
# mismatch would hand the library wrong values, so cuBLASLt stays off for this check then
if grep -q "cuBLASLt header for the ABI check" "$BUILD/configure.log"; then
  if cmake --build "$BUILD" --target tailor_ltabi >"$BUILD/ltabi.log" 2>&1; then
    say "== cuBLASLt declarations: the same as this toolkit's cublasLt.h (tailor_ltabi)"
  else
    grep -E "error|static assert" "$BUILD/ltabi.log" | head -20 | tee -a "$LOG"
    say "== cuBLASLt declarations DIFFER from this toolkit's cublasLt.h (tailor_ltabi above): TAILOR_CUBLASLT=0 for this check"
    TAILOR_CUBLASLT=0
    export TAILOR_CUBLASLT
  fi
else
  say "== cuBLASLt declarations: this toolkit has no cublasLt.h to check them against"
fi
. native/test/find-cublaslt.sh
say "== cuBLASLt: $CUBLASLT_NOTE"

# the whole-model check's model: the shared copy when this checkout sits beside ../shared, else the bundled one
MODEL=../shared/models/stories260K-hf
GOLDEN=""
if [ -f "$MODEL/config.json" ]; then GOLDEN="--golden ../shared/fixtures/golden/stories260K.json"; else MODEL=resources/models/stories260K; fi
say "== whole-model check on $MODEL"
# a hung kernel must not eat the session: the table and timings take seconds on a GPU
# shellcheck disable=SC2086
timeout 240 "$BUILD/tailor_cudacheck" --bench --model "$MODEL" $GOLDEN --random-model >"$BUILD/cudacheck.txt" 2>&1
rc=$?
tee -a "$LOG" <"$BUILD/cudacheck.txt"
[ "$rc" -eq 124 ] && say "== tailor_cudacheck TIMED OUT after 240 s (a kernel that never finishes?)"
say "== tailor_cudacheck exit $rc"
# failures with cuBLASLt active: the table once more with it turned off, to tell its failures from our kernels'
if [ "$rc" -eq 1 ] && grep -q "^cuBLASLt .*active (" "$BUILD/cudacheck.txt"; then
  say "== failures with cuBLASLt active: the table again with TAILOR_CUBLASLT=0 (our kernels only)"
  # shellcheck disable=SC2086
  TAILOR_CUBLASLT=0 timeout 240 "$BUILD/tailor_cudacheck" --model "$MODEL" $GOLDEN --random-model >"$BUILD/cudacheck-nolt.txt" 2>&1
  say "== tailor_cudacheck with TAILOR_CUBLASLT=0 exit $?"
  grep -E "FAIL|checks, " "$BUILD/cudacheck-nolt.txt" | head -40 | tee -a "$LOG"
fi

if [ "$rc" -ne 77 ] && [ "${GPU_CHECK_MEMCHECK:-1}" != 0 ] && command -v compute-sanitizer >/dev/null 2>&1; then
  # the kernel rows only (every kernel, odd shapes): whole models repeat the same kernels many times over,
  # which memcheck makes slow, and a lent GPU's minutes are few
  say "== compute-sanitizer --tool memcheck (the kernel rows again, slower)"
  timeout 150 compute-sanitizer --tool memcheck --print-limit 20 "$BUILD/tailor_cudacheck" >"$BUILD/memcheck.txt" 2>&1
  mrc=$?
  grep -E "ERROR SUMMARY|=========|checks, |error|Device not supported" "$BUILD/memcheck.txt" | head -60 | tee -a "$LOG"
  say "== memcheck exit $mrc"
  if [ "$rc" -eq 0 ] && [ "$mrc" -ne 0 ] && ! grep -q "Device not supported" "$BUILD/memcheck.txt"; then rc=1; fi
fi
if [ "$rc" -ne 77 ] && [ "${GPU_CHECK_MEMPLAN:-1}" != 0 ]; then
  say "== memory plan (docs/memory-plan.md) against the allocator's accounting: LLaMA-7B shape, bf16 weights"
  timeout 240 "$BUILD/tailor_cudacheck" --memory-plan 7b >"$BUILD/memplan.txt" 2>&1
  say "== memory plan exit $?"
  tee -a "$LOG" <"$BUILD/memplan.txt"
fi
say "== gpu-check done in $(( $(date +%s) - start )) s, exit $rc"
exit "$rc"
