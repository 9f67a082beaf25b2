// Counting the heap: malloc, free and their relatives replaced for the whole program
// (heap_count.hpp). The table of live blocks is a plain array: allocating inside malloc would recurse.
#include "common/heap_count.hpp"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace heap {

constexpr std::size_t kSlotBits = 19, kSlots = std::size_t(1) << kSlotBits;  // 4 MB of table
void* g_ptr[kSlots];
std::size_t g_size[kSlots];
std::atomic_flag g_lock = ATOMIC_FLAG_INIT;
std::int64_t g_live = 0, g_peak = 0;
bool g_full = false;  // the table ran out of slots: the counts are no longer exact

struct Lock {
  Lock() { while (g_lock.test_and_set(std::memory_order_acquire)) {} }
  ~Lock() { g_lock.clear(std::memory_order_release); }
};

std::size_t home(const void* p) {  // Fibonacci hashing of the address
  return std::size_t((std::uint64_t(reinterpret_cast<std::uintptr_t>(p)) >> 4) * 0x9E3779B97F4A7C15ull >> (64 - kSlotBits));
}

void record(void* p, std::size_t n) {
  if (!p) return;
  Lock lock;
  for (std::size_t i = home(p), probes = 0; probes < kSlots; ++probes, i = (i + 1) & (kSlots - 1))
    if (!g_ptr[i]) {
      g_ptr[i] = p, g_size[i] = n;
      g_live += std::int64_t(n);
      g_peak = std::max(g_peak, g_live);
      return;
    }
  g_full = true;
}

void forget(void* p) {  // linear probing with backward-shift deletion
  if (!p) return;
  Lock lock;
  std::size_t i = home(p);
  while (g_ptr[i] && g_ptr[i] != p) i = (i + 1) & (kSlots - 1);
  if (!g_ptr[i]) return;  // not ours (allocated before the table knew it, or by another path)
  g_live -= std::int64_t(g_size[i]);
  for (std::size_t j = (i + 1) & (kSlots - 1); g_ptr[j]; j = (j + 1) & (kSlots - 1)) {
    const std::size_t h = home(g_ptr[j]);
    const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);  // h cyclically in (i, j]
    if (!stays) g_ptr[i] = g_ptr[j], g_size[i] = g_size[j], i = j;
  }
  g_ptr[i] = nullptr;
}

// The bytes in use now, after setting the peak to it: start of a measurement.
std::int64_t reset_peak() {
  Lock lock;
  g_peak = g_live;
  return g_live;
}
std::int64_t peak() {
  Lock lock;
  return g_peak;
}
bool exact() {
  Lock lock;
  return !g_full;
}

}  // namespace heap

extern "C" {
void* __libc_malloc(std::size_t);
void __libc_free(void*);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void* __libc_valloc(std::size_t);
void* __libc_pvalloc(std::size_t);

void* malloc(std::size_t n) noexcept {
  void* p = __libc_malloc(n);
  heap::record(p, n);
  return p;
}
void free(void* p) noexcept {
  heap::forget(p);
  __libc_free(p);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
  void* p = __libc_calloc(count, size);
  heap::record(p, count * size);  // no overflow: glibc returned nullptr then
  return p;
}
void* realloc(void* p, std::size_t n) noexcept {
  void* q = __libc_realloc(p, n);
  if (q || n == 0) {  // moved, resized or freed; on failure p is untouched
    heap::forget(p);
    heap::record(q, n);
  }
  return q;
}
void* reallocarray(void* p, std::size_t count, std::size_t size) noexcept {
  std::size_t n = 0;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(p, n);
}
void* memalign(std::size_t alignment, std::size_t n) noexcept {
  void* p = __libc_memalign(alignment, n);
  heap::record(p, n);
  return p;
}
void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept { return memalign(alignment, n); }
int posix_memalign(void** out, std::size_t alignment, std::size_t n) noexcept {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* p = memalign(alignment, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(std::size_t n) noexcept {
  void* p = __libc_valloc(n);
  heap::record(p, n);
  return p;
}
void* pvalloc(std::size_t n) noexcept {
  void* p = __libc_pvalloc(n);
  heap::record(p, n);
  return p;
}
}  // extern "C"
