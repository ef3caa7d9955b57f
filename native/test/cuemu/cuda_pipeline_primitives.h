// cuda_pipeline_primitives.h — the emulator's stand-in for CUDA's asynchronous copies to shared memory
// (cp.async, sm_80+; see cuemu.h). A copy writes poison over its destination at once (0xFF bytes: NaN in
// fp32 and bf16) and its data only when its thread waits for its group (__pipeline_wait_prior): the earliest
// and the latest moments the hardware may write it. So a read of the destination between the two — a missing
// wait or barrier, or a buffer refilled while another warp still reads it — gives wrong results here, and under
// ThreadSanitizer both writes are this thread's (this header is compiled into the instrumented kernels, not
// into cuemu.cpp). A thread that returns with copies not waited for aborts, naming it.
#pragma once
#include <cstdio>
#include <cstring>

#include "cuemu.h"

inline void __pipeline_memcpy_async(void* dst_shared, const void* src_global, size_t size_and_align, size_t zfill = 0) {
  if ((size_and_align != 4 && size_and_align != 8 && size_and_align != 16) || zfill > size_and_align) {
    std::fprintf(stderr, "cuemu: __pipeline_memcpy_async of %zu bytes, %zu zero-filled (4, 8 or 16; at most all)\n", size_and_align, zfill);
    cuemu::trap();
  }
  cuemu::check_aligned(dst_shared, size_and_align, "__pipeline_memcpy_async (shared destination)");
  cuemu::check_aligned(src_global, size_and_align, "__pipeline_memcpy_async (global source)");
  std::memset(dst_shared, 0xff, size_and_align);
  cuemu::async_issue(cuemu::AsyncCopy{dst_shared, src_global, size_and_align, zfill});
}

inline void __pipeline_commit() { cuemu::async_commit(); }

// every committed group but the `prior` most recent lands
inline void __pipeline_wait_prior(size_t prior) {
  cuemu::AsyncCopy c;
  while (cuemu::async_due(prior, &c)) {
    unsigned char* d = static_cast<unsigned char*>(c.dst);
    std::memcpy(d, c.src, c.bytes - c.zfill);
    std::memset(d + (c.bytes - c.zfill), 0, c.zfill);
  }
}
