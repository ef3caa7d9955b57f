# find-cublaslt.sh — sourced by gpu-check.sh and bench/test-gpu.sh: where the system's own search would find
# no cuBLASLt (no libcublasLt.so.* in the loader cache, $CUDA_HOME, $CUDA_PATH or /usr/local/cuda) but
# PyTorch's wheels bring one (nvidia-cublas-cu*), points TAILOR_CUBLASLT at it, so that Tailor's products
# run through the same library as the PyTorch they are compared with. An explicit TAILOR_CUBLASLT is kept.
# Sets CUBLASLT_NOTE to one line saying what it did.
CUBLASLT_NOTE="TAILOR_CUBLASLT=${TAILOR_CUBLASLT:-} (kept)"
if [ -z "${TAILOR_CUBLASLT:-}" ]; then
  CUBLASLT_NOTE="the system's search (the loader's path and cache, \$CUDA_HOME, \$CUDA_PATH, /usr/local/cuda)"
  found=""
  ldconfig -p 2>/dev/null | grep -q 'libcublasLt\.so\.1[123]' && found=1
  for d in "${CUDA_HOME:-}/lib64" "${CUDA_PATH:-}/lib64" /usr/local/cuda/lib64; do
    ls "$d"/libcublasLt.so.1[123] >/dev/null 2>&1 && found=1
  done
  if [ -z "$found" ] && command -v python3 >/dev/null 2>&1; then
    torch_lt=$(python3 -c "
import glob, os
try:
    import nvidia.cublas as c
except Exception:
    raise SystemExit
for d in list(c.__path__):
    libs = sorted(glob.glob(os.path.join(d, 'lib', 'libcublasLt.so.1[123]')))
    if libs:
        print(libs[-1])
        break
" 2>/dev/null)
    if [ -n "$torch_lt" ]; then
      TAILOR_CUBLASLT=$torch_lt
      export TAILOR_CUBLASLT
      CUBLASLT_NOTE="TAILOR_CUBLASLT=$torch_lt (PyTorch's wheel: none in the system's search)"
    fi
  fi
fi
