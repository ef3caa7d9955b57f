// cudacheck_transfer.cpp — rows of tailor_cudacheck for cuda/transfer.h: uploads and downloads through the
// page-locked staging buffers of the copy stream, in chunks of 4 KiB so that a few hundred KB take many
// turns of the pipeline. Each row also checks the ordering against the default stream: an upload must not
// overwrite a buffer that kernels queued before it still read, and a download must see what kernels
// queued before it wrote. On the CPU emulator, where queued work runs as late as CUDA allows, a missing
// event wait shows here as wrong values; on a GPU it may pass by luck, so the emulator run is the check.
#include "cudacheck.h"
#include "transfer.h"
#ifdef TAILOR_CUEMU_BUILD
#include "cuemu.h"
#endif

namespace cudacheck {

void check_transfers() {
  const size_t n = 100003;  // floats: 98 chunks of 4 KiB, the last one short
  cu::Transfer tr(4096);
#ifdef TAILOR_CUEMU_BUILD
  const size_t pageable_before = cuemu::pageable_async_copies();
#endif
  auto old_v = randf(n), new_v = randf(n);
  Dev<float> x(old_v), y(n);
  cu::device_memset(y.p, 0, n * sizeof(float));
  // a kernel queued before the upload reads x's old values: y = 0 + x_old
  cu::add_inplace(y.p, x.p, int64_t(n));
  tr.upload(x.p, new_v.data(), n * sizeof(float));
  // a kernel queued after it sees the new values (x = 2·x_new), and so does a plain copy on the default
  // stream (which does not wait for the copy stream by itself)
  cu::scale_inplace(x.p, 2.f, int64_t(n));
  std::vector<float> got_x = x.get(), want_x(n), want_y(n);
  for (size_t i = 0; i < n; i++) want_x[i] = 2.f * new_v[i], want_y[i] = 3.f * old_v[i];
  report("copy stream", "upload (98 chunks), a kernel, a plain copy back", got_x, want_x, 0.0);
  // a download sees what kernels queued before it wrote: y = 3·x_old
  cu::scale_inplace(y.p, 3.f, int64_t(n));
  std::vector<float> got_y(n);
  tr.download(got_y.data(), y.p, n * sizeof(float));
  report("copy stream", "download after a kernel; the upload kept x_old for it", got_y, want_y, 0.0);

  // fp32 host → bf16 device, rounded on the default stream while the next chunk is copied
  const size_t per = tr.chunk_bytes() / sizeof(float);
  Dev<float> s0(per), s1(per);
  Dev<uint16_t> wb(n);
  float* const stage[2] = {s0.p, s1.p};
  tr.upload_bf16(wb.p, new_v.data(), n, stage);
  std::vector<uint16_t> bits = wb.get();
  std::vector<double> got_b(n), want_b(n);
  for (size_t i = 0; i < n; i++) got_b[i] = bits[i], want_b[i] = bf16_bits(new_v[i]);
  report("copy stream", "upload_bf16: the device's bits = host rounding", got_b, want_b, 0.0);

  // below the direct threshold: a plain copy, the same ordering guarantees
  std::vector<float> small = randf(100), small_back(100);
  Dev<float> z(100);
  tr.upload(z.p, small.data(), sizeof(float) * 100);
  tr.download(small_back.data(), z.p, sizeof(float) * 100);
  report("copy stream", "small copies (direct)", small_back, small, 0.0);
  const bool pinned = tr.pinned();
  checks++;
  if (!pinned) failures++;
  std::printf("%-22s %-44s %11s %11s %9s  %s\n", "copy stream", "staging is page-locked", "", "", "", pinned ? "ok" : "FAIL");
#ifdef TAILOR_CUEMU_BUILD
  const size_t pageable = cuemu::pageable_async_copies() - pageable_before;
  checks++;
  if (pageable) failures++;
  std::printf("%-22s %-44s %11zu %11s %9s  %s\n", "copy stream", "async copies from pageable memory", pageable, "", "0", pageable ? "FAIL" : "ok");
#endif
}

}  // namespace cudacheck
