#!/bin/sh
# ptxas-log.sh DIR COMMAND... — the compile launcher of the CUDA objects (CMake's RULE_LAUNCH_COMPILE): runs the
# nvcc command (built with --resource-usage) and files ptxas's account of each kernel — registers, shared memory,
# spills, per architecture — under DIR, one file per object (named after its -o), instead of the build's output.
# test/cuda.test.ts holds those numbers against the block sizes of the emulator's launches.
dir=$1
shift
out=""
prev=""
for a in "$@"; do
  [ "$prev" = "-o" ] && out=$a
  prev=$a
done
mkdir -p "$dir"
log="$dir/$(basename "${out:-unknown}").txt"
tmp="$log.$$"
"$@" 2>"$tmp"
rc=$?
grep -E "^ptxas info|bytes stack frame" "$tmp" >"$log"
grep -vE "^ptxas info|bytes stack frame" "$tmp" >&2
rm -f "$tmp"
exit $rc
