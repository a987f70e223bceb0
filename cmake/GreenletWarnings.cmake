# greenlet_set_warnings(target) is the one place the project's warning flags live.
function(greenlet_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(GREENLET_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
