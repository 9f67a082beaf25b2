// Independent runs on several threads: a lesson's sweep of training runs (one per seed, task and
// model) on both cores. Each run builds its own model, data and optimiser; the engine's only
// per-thread state, the grad mode, is thread_local. A run's results must not depend on the thread:
// the same seed gives the same numbers with one worker or several.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <iostream>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace lab {

// Calls work(item) once for every item, on `workers` threads (the calling thread is one of them).
// Items for which starts_first(item) is true are started before the others: put the longest runs
// first and the workers end together. Returns when every item is done; the first exception thrown
// by a run is rethrown then (the runs already started finish, no new ones start).
template <class Item, class Work, class StartsFirst>
void run_in_parallel(std::vector<Item>& items, std::size_t workers, Work work, StartsFirst starts_first) {
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::stable_partition(order.begin(), order.end(), [&](std::size_t i) { return starts_first(items[i]); });
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (std::size_t n; (n = next++) < order.size();) {
      try {
        work(items[order[n]]);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = order.size();
      }
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < std::max<std::size_t>(workers, 1); ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

// One whole line on std::cout, never interleaved with another thread's.
inline void print_line(const std::string& line) {
  static std::mutex m;
  const std::lock_guard<std::mutex> lock(m);
  std::cout << line << std::endl;
}

}  // namespace lab
