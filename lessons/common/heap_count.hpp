#pragma once
// Counting the heap, exactly (lessons 13 and 18): the bytes a step holds at its peak, the same
// number on every run. Link the `heapcount` library (lessons/CMakeLists.txt) into a lesson to
// use it: it replaces malloc and free for the whole program, so it is not part of labkit.
//
//   const std::int64_t bytes = heap::peak_growth([&] { model.step(); });
//
// Every array of the engine comes from malloc (ag/array_config.hpp), and every graph node from
// operator new, which calls malloc. heap_count.cpp defines malloc, free and their relatives (the
// dynamic linker then sends every library's calls there too); each passes the call on to glibc's
// own (__libc_malloc, ...) and notes the pointer and the bytes asked for in a fixed table, so
// that `live` is the bytes in use and `peak` the most there were at once. Bytes asked for, not
// the blocks glibc hands out, so the count does not depend on the heap's history.
#include <cstdint>

namespace heap {

std::int64_t reset_peak();  // the bytes in use now, after setting the peak to it: start of a measurement
std::int64_t peak();        // the most bytes in use at once since the last reset_peak()
bool exact();               // false once the table of live blocks filled: the counts are no longer exact

// The most bytes f() held at once on top of what was in use before it: its peak working set.
template <class F>
std::int64_t peak_growth(F&& f) {
  const std::int64_t base = reset_peak();
  f();
  return peak() - base;
}

}  // namespace heap
