# check.cmake: compiles SOURCE with CXX (syntax only) and passes if the
# compilation fails with an error matching the regex on SOURCE's first line
# ("// expect: <regex>"). Run by the compile_fail.* tests (CMakeLists.txt).
file(STRINGS "${SOURCE}" first LIMIT_COUNT 1)
string(REGEX REPLACE "^// expect: " "" expected "${first}")
execute_process(
  COMMAND "${CXX}" -std=c++20 -fsyntax-only "-I${INCLUDE}" "${SOURCE}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
if(NOT output MATCHES "${expected}")
  message(FATAL_ERROR "${SOURCE} failed to compile without the expected message \"${expected}\":\n${output}")
endif()
