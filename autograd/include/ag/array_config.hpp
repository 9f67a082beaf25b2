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
#include <new>

namespace ag {

inline constexpr std::size_t kArrayAlignment = 64;

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() noexcept = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kArrayAlignment})); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kArrayAlignment}); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

}  // namespace ag

#define XTENSOR_DEFAULT_ALLOCATOR(T) ::ag::CacheLineAllocator<T>
