# greenlet_align_branches(target) keeps the target's branches, and those of
# every program linking it, from crossing or ending on a 32-byte boundary.
#
# Why: on Intel CPUs of the Skylake family (Skylake to Cascade Lake, common in
# servers and cloud VMs), the microcode fix for the "JCC erratum" keeps such a
# branch out of the decoded-instruction cache, so the code around it is
# decoded again on every pass. The common greenlet switch is inlined into the
# caller's code (include/greenlet/detail/switch_inline.hpp) and is a run of
# short compare-and-branch pairs: where they happen to straddle a boundary, a
# switch cost 8.4 ns instead of 6.7 ns on an Intel Xeon model 85 (2026-11-27,
# bench/README.md). The assembler pads with prefixes and nops instead, about
# 1% more code; other CPUs run the padding at no measurable cost.
#
# PUBLIC, so consumers of greenlet::greenlet compile with it too (it is in the
# exported target and in greenlet.pc). GREENLET_ALIGN_BRANCHES=OFF leaves it out.
include(CheckCXXCompilerFlag)

option(GREENLET_ALIGN_BRANCHES
       "Pad branches off 32-byte boundaries (Intel JCC erratum) in the library and its consumers" ON)

function(greenlet_align_branches target)
  set(GREENLET_BRANCH_ALIGNMENT_FLAG "" PARENT_SCOPE)
  if(NOT GREENLET_ALIGN_BRANCHES OR NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    return()
  endif()
  # GCC passes it to GNU as; Clang's integrated assembler takes it directly.
  foreach(flag "-Wa,-mbranches-within-32B-boundaries" "-mbranches-within-32B-boundaries")
    string(MAKE_C_IDENTIFIER "GREENLET_HAS${flag}" result)
    check_cxx_compiler_flag("${flag}" ${result})
    if(${result})
      target_compile_options(${target} PUBLIC "${flag}")
      set(GREENLET_BRANCH_ALIGNMENT_FLAG "${flag}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
endfunction()
