# check.cmake: compiles SOURCE with CXX (syntax only) and passes if the
# compilation fails with an error matching the regex on SOURCE's first line
# ("// expect: <regex>"); a second line "// flags: <flags>" adds compiler
# flags. Run by the compile_fail.* tests (CMakeLists.txt).
file(STRINGS "${SOURCE}" head LIMIT_COUNT 2)
list(GET head 0 first)
string(REGEX REPLACE "^// expect: " "" expected "${first}")
set(flags "")
list(LENGTH head lines)
if(lines GREATER 1)
  list(GET head 1 second)
  if(second MATCHES "^// flags: (.*)$")
    separate_arguments(flags UNIX_COMMAND "${CMAKE_MATCH_1}")
  endif()
endif()
execute_process(
  COMMAND "${CXX}" -std=c++20 -fsyntax-only ${flags} "-I${INCLUDE}" "${SOURCE}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
if(NOT output MATCHES "${expected}")
  message(FATAL_ERROR "${SOURCE} failed to compile without the expected message \"${expected}\":\n${output}")
endif()
