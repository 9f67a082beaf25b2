#pragma once
// ag::Error: the one exception attnlab throws for misuse. Its message names the op and the
// shapes involved, e.g. "matmul: shapes [32,64] and [32,64] do not align (64 != 32)".
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ag {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Builds a message from any streamable pieces: fail("add: ", shape_a, " vs ", shape_b).
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  throw Error(os.str());
}

}  // namespace ag
