#pragma once
// Every xtensor container in attnlab allocates on a 64-byte boundary: one cache line, one
// AVX-512 vector. BLAS packs its panels faster from aligned rows (sgemm 1024^3 here: ~3%), and
// no SIMD load of a kernel straddles two cache lines at the start of an array.
//
// xtensor takes its containers' allocator from the macro below, and the allocator is part of the
// container's type, so every file must see the same one before it sees any xtensor header. The
// build makes sure of it: autograd/CMakeLists.txt passes `-include ag/array_config.hpp` to every
// file that links the engine.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace ag {

inline constexpr std::size_t kArrayAlignment = 64;

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() noexcept = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  // malloc'ed with room to move the start up to the next 64-byte boundary; the block's own
  // address is kept just before it. (aligned operator new, glibc's memalign, splits the heap
  // into pieces it reuses badly: a Transformer step's peak grew by 12%.)
  T* allocate(std::size_t n) {
    if (n > (std::size_t(-1) - kArrayAlignment) / sizeof(T)) throw std::bad_alloc();
    void* block = std::malloc(n * sizeof(T) + kArrayAlignment);
    if (!block) throw std::bad_alloc();
    const std::uintptr_t start = (reinterpret_cast<std::uintptr_t>(block) + kArrayAlignment) & ~std::uintptr_t(kArrayAlignment - 1);
    reinterpret_cast<void**>(start)[-1] = block;  // malloc aligns to 16, so there are >= 16 bytes before start
    return reinterpret_cast<T*>(start);
  }
  void deallocate(T* p, std::size_t) noexcept {
    if (p) std::free(reinterpret_cast<void**>(p)[-1]);
  }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

}  // namespace ag

#define XTENSOR_DEFAULT_ALLOCATOR(T) ::ag::CacheLineAllocator<T>
