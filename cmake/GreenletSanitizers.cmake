# greenlet_apply_sanitizer(target) adds the flags for GREENLET_SANITIZE to a target.
# The sanitizer flags are PUBLIC so that tests, examples and benchmarks linking the
# library are instrumented the same way: ASan and TSan need every fiber switch of
# the process annotated, which the library does when GREENLET_SANITIZE is set.
#
# GREENLET_SANITIZE is one of address, undefined, thread, or address,undefined
# (both in one build, what scripts/test.sh's asan pass uses). A target whose
# GREENLET_UBSAN_LIBRARY_ONLY property is on compiles its own code without
# UndefinedBehaviorSanitizer (it still links its runtime, for the library's
# checks): the fast test build sets it on the test binaries, whose code
# UBSan made twice as slow to compile.
#
# UBSan's vptr check is off. Before reading an object's vtable it asks the
# kernel whether the memory is readable, through a pipe it opens then; the
# tests that use up every file descriptor on purpose (EMFILE) throw
# std::system_error there, and the check, with no descriptor for its pipe,
# reported the exception under construction as having an invalid vptr.
# In CI's pass, AddressSanitizer finds the use of a destroyed object that check
# is for.
function(greenlet_apply_sanitizer target)
  string(REPLACE "," ";" kinds "${GREENLET_SANITIZE}")
  foreach(kind IN LISTS kinds)
    if(NOT kind MATCHES "^(address|undefined|thread)$" OR ("thread" IN_LIST kinds AND NOT kind STREQUAL "thread"))
      message(FATAL_ERROR "GREENLET_SANITIZE must be address, undefined, thread, address,undefined "
                          "or empty, not '${GREENLET_SANITIZE}'")
    endif()
  endforeach()
  if(kinds)
    target_compile_options(${target} PUBLIC -fno-omit-frame-pointer)
  endif()
  if("address" IN_LIST kinds)
    target_compile_options(${target} PUBLIC -fsanitize=address)
    target_link_options(${target} PUBLIC -fsanitize=address)
  endif()
  if("undefined" IN_LIST kinds)
    set(own_code_checked "$<NOT:$<BOOL:$<TARGET_PROPERTY:GREENLET_UBSAN_LIBRARY_ONLY>>>")
    target_compile_options(${target} PUBLIC
                           "$<${own_code_checked}:-fsanitize=undefined;-fno-sanitize=vptr;-fno-sanitize-recover=undefined>")
    target_link_options(${target} PUBLIC -fsanitize=undefined)
  endif()
  if("thread" IN_LIST kinds)
    target_compile_options(${target} PUBLIC -fsanitize=thread)
    target_link_options(${target} PUBLIC -fsanitize=thread)
  endif()
endfunction()
