// libFuzzer target for the safetensors parser: any byte string must either parse or raise
// ag::Error, never crash, hang or read out of bounds (AddressSanitizer watches). Run: ./lab fuzz
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nn/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto file = nn::parse_safetensors(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    (void)file;
  } catch (const ag::Error&) {
    // a clear error is the right answer to a malformed file
  }
  return 0;
}
