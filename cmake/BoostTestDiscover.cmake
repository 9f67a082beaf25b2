# One CTest test per Boost.Test case, so `ctest -R softmax` runs exactly the softmax cases.
#
# After each build the test binary lists its cases (--list_content); a script turns every leaf
# of that tree into add_test(<suite/case> <binary> --run_test=<suite/case>) in a file that CTest
# reads (like gtest_discover_tests, for Boost.Test).
set(_BOOST_DISCOVER_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/BoostTestList.cmake)

function(attnlab_add_boost_test target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${target} ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE ${ARG_LIBS} Boost::unit_test_framework)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests)  # tests/common/
  target_compile_definitions(${target} PRIVATE BOOST_TEST_DYN_LINK)
  set(ctest_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_tests.cmake)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -DBINARY=$<TARGET_FILE:${target}> -DOUT=${ctest_file}
            -DPREFIX=${target} "-DLABELS=${ARG_LABELS}" -DWORKDIR=${PROJECT_SOURCE_DIR}
            -P ${_BOOST_DISCOVER_SCRIPT}
    BYPRODUCTS ${ctest_file}
    VERBATIM)
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${ctest_file})
endfunction()
