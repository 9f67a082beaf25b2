#pragma once
// CPU time of this thread, for lessons that time their own kernels (13, 18).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace lab {

// A std::chrono clock that counts only this thread's CPU time. Other programs share the cores;
// a wall clock would charge their time to whichever run they interrupted. With OpenBLAS on one
// thread, this thread's CPU time is the whole cost of the kernel. (It still varies: other
// programs share the caches.)
struct thread_cpu_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<thread_cpu_clock>;
  static constexpr bool is_steady = true;
  static time_point now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return time_point(duration(std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec));
  }
};

// Median over `reps` runs of f(), in milliseconds of CPU time, after one warm-up run.
template <class F>
double median_ms(F&& f, int reps) {
  f();  // warm-up: first-touch page faults, OpenBLAS buffers
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = thread_cpu_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(thread_cpu_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + std::ptrdiff_t(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace lab
