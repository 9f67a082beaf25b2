// Every input the fuzzer (./lab fuzz) or a hand found troublesome, kept in fuzz/regressions/:
// the parser must answer each with a parsed file or an ag::Error, never a crash.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/checkpoint.hpp"

BOOST_AUTO_TEST_SUITE(fuzz_regressions)

BOOST_AUTO_TEST_CASE(every_kept_input_parses_or_errors_cleanly) {
  int files = 0;
  for (const char* dir : {"fuzz/regressions", "fuzz/corpus"}) {  // CTest runs from the source root
    BOOST_REQUIRE_MESSAGE(std::filesystem::is_directory(dir), dir << " not found");
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      std::ifstream f(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      const std::string bytes = ss.str();
      try {
        nn::parse_safetensors(bytes, e.path().string());
        BOOST_TEST_MESSAGE(e.path().filename() << ": parsed");
      } catch (const ag::Error& err) {
        BOOST_TEST_MESSAGE(e.path().filename() << ": " << err.what());
      }
      ++files;
    }
  }
  BOOST_TEST(files >= 8);
}

BOOST_AUTO_TEST_SUITE_END()
