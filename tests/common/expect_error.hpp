#pragma once
// expect_error(f, {"matmul", "[32,64]"}): f must throw ag::Error whose message contains every
// one of the parts (the op's name and the shapes, as attnlab's messages promise).
#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>
#include <vector>

#include "ag/error.hpp"

inline void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const ag::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST_MESSAGE("ag::Error: " << msg);
    for (const auto& p : parts) {
      BOOST_TEST_INFO("message: " << msg);
      BOOST_TEST(msg.find(p) != std::string::npos, "the message lacks \"" << p << "\"");
    }
    return;
  } catch (const std::exception& e) {
    BOOST_ERROR("expected ag::Error, got another std::exception: " << e.what());
    return;
  }
  BOOST_ERROR("expected ag::Error, nothing was thrown");
}
