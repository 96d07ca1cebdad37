// Minimal fork-join parallelism for the CPU kernels: split [0, n) over threads that live
// for one call. No global pool, so the module stays fork-safe and never competes with
// torch's own pool between calls.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace cvae {

// Cached: hardware_concurrency() is a system call, too slow for microsecond-sized solves.
inline int default_num_threads() {
  static const int cores = [] {
    unsigned h = std::thread::hardware_concurrency();
    return h == 0 ? 1 : static_cast<int>(h);
  }();
  return cores;
}

// Runs fn(i) for i in [0, n) on up to `num_threads` threads (0 = all cores); the calling
// thread takes part. Work is handed out dynamically one index at a time, because batched
// problems can differ wildly in cost. The first exception thrown by fn is rethrown here.
template <typename Fn>
void parallel_for(int64_t n, int num_threads, Fn&& fn) {
  if (n <= 0) return;
  if (n == 1) {
    fn(0);
    return;
  }
  int t = num_threads > 0 ? num_threads : default_num_threads();
  t = static_cast<int>(std::min<int64_t>(t, n));
  if (t <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    for (;;) {
      int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(n);
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (int k = 0; k < t - 1; ++k) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

// Splits [0, n) into `chunks` contiguous ranges and runs fn(begin, end) on each in parallel.
template <typename Fn>
void parallel_ranges(int64_t n, int num_threads, int64_t min_chunk, Fn&& fn) {
  if (n <= 0) return;
  int t = num_threads > 0 ? num_threads : default_num_threads();
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(t, (n + min_chunk - 1) / std::max<int64_t>(1, min_chunk)));
  int64_t step = (n + chunks - 1) / chunks;
  parallel_for(chunks, static_cast<int>(chunks), [&](int64_t c) {
    int64_t b = c * step, e = std::min(n, b + step);
    if (b < e) fn(b, e);
  });
}

}  // namespace cvae
