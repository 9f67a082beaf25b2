#define BOOST_TEST_MODULE labkit
#include <boost/test/unit_test.hpp>
