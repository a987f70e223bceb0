# greenlet_apply_sanitizer(target) adds the flags for GREENLET_SANITIZE to a target.
# The sanitizer flags are PUBLIC so that tests, examples and benchmarks linking the
# library are instrumented the same way: ASan and TSan need every fiber switch of
# the process annotated, which the library does when GREENLET_SANITIZE is set.
function(greenlet_apply_sanitizer target)
  if(GREENLET_SANITIZE STREQUAL "address")
    target_compile_options(${target} PUBLIC -fsanitize=address -fno-omit-frame-pointer)
    target_link_options(${target} PUBLIC -fsanitize=address)
  elseif(GREENLET_SANITIZE STREQUAL "undefined")
    target_compile_options(${target} PUBLIC -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(${target} PUBLIC -fsanitize=undefined)
  elseif(GREENLET_SANITIZE STREQUAL "thread")
    target_compile_options(${target} PUBLIC -fsanitize=thread)
    target_link_options(${target} PUBLIC -fsanitize=thread)
  elseif(NOT GREENLET_SANITIZE STREQUAL "")
    message(FATAL_ERROR "GREENLET_SANITIZE must be address, undefined, thread or empty, not '${GREENLET_SANITIZE}'")
  endif()
endfunction()
