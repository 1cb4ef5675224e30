# tm_module(NAME SOURCES... DEPS ...): one static library per src/ module.
# Includes are rooted at src/ ("wal/segment_writer.h").
set(TM_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)

function(tm_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(tm_${name} STATIC ${M_SOURCES})
  target_include_directories(tm_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(tm_${name} PRIVATE ${TM_WARNINGS})
  target_link_libraries(tm_${name} PUBLIC ${M_DEPS})
endfunction()

# tm_test(NAME SOURCES... DEPS ...): a gtest binary registered with CTest.
function(tm_test name)
  if(NOT TM_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${TM_WARNINGS})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main Threads::Threads)
  add_test(NAME ${name} COMMAND ${name})
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
