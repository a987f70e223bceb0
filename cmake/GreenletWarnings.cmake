# greenlet_set_warnings(target) is the one place the project's warning flags live.
function(greenlet_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(GREENLET_WERROR)
    # maybe-uninitialized stays a warning: with sanitizer instrumentation GCC 12
    # reports it inside libstdc++ itself (<regex>, <functional>).
    target_compile_options(${target} PRIVATE -Werror $<$<CXX_COMPILER_ID:GNU>:-Wno-error=maybe-uninitialized>)
  endif()
endfunction()
