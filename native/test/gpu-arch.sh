# gpu-arch.sh — sourced by gpu-check.sh and bench/test-gpu.sh: CUDA_ARCHS for this machine's GPU, so that a
# lent GPU's minutes are not spent compiling for five architectures. An explicit CUDA_ARCHS is kept; else
# the first GPU's compute capability from nvidia-smi (e.g. 9.0 → "90-real"), else CMake's "native" where
# CMake has it (3.24+) and nvidia-smi sees a GPU, else the shipped list.
if [ -z "${CUDA_ARCHS:-}" ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. \r')
  case "$cc" in
    [0-9][0-9]|[0-9][0-9][0-9]) CUDA_ARCHS="${cc}-real" ;;
    *)
      cmake_minor=$(cmake --version 2>/dev/null | head -1 | sed -n 's/^cmake version 3\.\([0-9]*\).*/\1/p')
      if nvidia-smi -L >/dev/null 2>&1 && [ -n "$cmake_minor" ] && [ "$cmake_minor" -ge 24 ]; then
        CUDA_ARCHS=native
      else
        CUDA_ARCHS="75-real;80-real;86-real;89-real;90"
      fi
      ;;
  esac
fi
