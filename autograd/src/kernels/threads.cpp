// Note [threads] (kernels.hpp): the thread count, and the pool that runs the engine's parallel work.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/kernels.hpp"

namespace ag::kernels {
namespace {

std::atomic<std::size_t> g_threads_set{0};  // set_num_threads; 0 = from the environment

std::size_t threads_from_env() {
  for (const char* name : {"ATTNLAB_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
    const char* v = std::getenv(name);
    if (v && *v) {
      const long n = std::strtol(v, nullptr, 10);
      if (n >= 1) return std::size_t(n);
    }
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

bool& in_pool_task() {
  thread_local bool inside = false;
  return inside;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Workers that live for the whole process. A job is (fn, ctx, tasks): every thread, the caller
// included, takes task indices from one counter until none is left, so a slow thread takes fewer.
// Between jobs a worker spins for kSpin (a step's gemms come microseconds apart, and waking a
// sleeping thread costs tens of them; OpenBLAS's own workers spin far longer), then sleeps on the
// condition variable.
class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool;  // never destroyed: workers may still be parked at exit
    return *pool;
  }

  // False when another thread is using the pool (the caller then runs the tasks itself).
  bool run(std::size_t tasks, std::size_t threads, void (*fn)(void*, std::size_t), void* ctx) {
    std::unique_lock<std::mutex> caller(run_mutex_, std::try_to_lock);
    if (!caller.owns_lock()) return false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      while (workers_.size() + 1 < threads) {
        const std::size_t index = workers_.size();
        workers_.emplace_back([this, index] { work_loop(index); });
      }
      while (busy_.load(std::memory_order_acquire) != 0) {  // a worker still leaving the last job
        lock.unlock();
        cpu_relax();
        lock.lock();
      }
      fn_ = fn;
      ctx_ = ctx;
      tasks_ = tasks;
      helpers_ = threads - 1;
      next_.store(0, std::memory_order_relaxed);
      pending_.store(tasks, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    in_pool_task() = true;  // the caller's tasks too: a nested run_tasks runs in place
    take_tasks();
    in_pool_task() = false;
    for (unsigned spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins)
      if (spins < 4096) cpu_relax();
      else std::this_thread::yield();
    return true;
  }

 private:
  static constexpr auto kSpin = std::chrono::microseconds(2000);

  void take_tasks() {
    for (std::size_t t; (t = next_.fetch_add(1, std::memory_order_relaxed)) < tasks_;) {
      fn_(ctx_, t);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void work_loop(std::size_t index) {
    in_pool_task() = true;  // a task that calls run_tasks runs its tasks itself
    std::uint64_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      for (unsigned i = 0; generation_.load(std::memory_order_acquire) == seen; ++i) {
        cpu_relax();
        if (i % 64 == 63 && std::chrono::steady_clock::now() > until) break;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      seen = generation_.load(std::memory_order_acquire);
      if (index >= helpers_) continue;  // this job wants fewer threads
      busy_.fetch_add(1, std::memory_order_acq_rel);  // under the lock: run() will not reuse fn_/ctx_ until we leave
      lock.unlock();
      take_tasks();
      busy_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::mutex run_mutex_;  // one job at a time
  std::mutex mutex_;      // guards the job's fields against workers that are joining it
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::size_t> next_{0}, pending_{0}, busy_{0};
  void (*fn_)(void*, std::size_t) = nullptr;
  void* ctx_ = nullptr;
  std::size_t tasks_ = 0, helpers_ = 0;
};

}  // namespace

std::size_t num_threads() {
  static const std::size_t from_env = threads_from_env();
  const std::size_t set = g_threads_set.load(std::memory_order_relaxed);
  return set ? set : from_env;
}
void set_num_threads(std::size_t n) { g_threads_set.store(n, std::memory_order_relaxed); }

bool in_task() { return in_pool_task(); }

void run_tasks(std::size_t tasks, std::size_t threads, void (*fn)(void*, std::size_t), void* ctx) {
  threads = std::min(threads, tasks);
  if (threads <= 1 || in_pool_task() || !Pool::instance().run(tasks, threads, fn, ctx))
    for (std::size_t t = 0; t < tasks; ++t) fn(ctx, t);
}

}  // namespace ag::kernels
