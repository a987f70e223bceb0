# GreenletDocs.cmake: the `docs` target, the API reference built by Doxygen
# from the public headers and docs/*.md into <build>/docs/html. Defined only
# when Doxygen is found (Debian: apt-get install doxygen); never part of `all`.
#
# Doxygen's warnings (mostly public entities with no comment) go to
# <build>/docs/doxygen-warnings.log; the target prints how many there are.
# This file is also its own counting script: cmake -DLOG=<log> -P GreenletDocs.cmake.

if(CMAKE_SCRIPT_MODE_FILE)
  if(NOT EXISTS "${LOG}")
    message(STATUS "docs: no warning log at ${LOG}")
    return()
  endif()
  file(STRINGS "${LOG}" lines)
  # A namespace member is reported once per scope that lists it (file and namespace).
  list(REMOVE_DUPLICATES lines)
  set(undocumented 0)
  set(other 0)
  foreach(line IN LISTS lines)
    if(line MATCHES "is not documented")
      math(EXPR undocumented "${undocumented} + 1")
    elseif(line MATCHES ": warning: ")
      math(EXPR other "${other} + 1")
    endif()
  endforeach()
  message(STATUS "docs: ${undocumented} undocumented public entities, ${other} other warnings; see ${LOG}")
  return()
endif()

find_package(Doxygen QUIET)
if(NOT DOXYGEN_FOUND)
  message(STATUS "Doxygen not found: no `docs` target")
  return()
endif()

set(GREENLET_DOCS_OUTPUT_DIR ${PROJECT_BINARY_DIR}/docs)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${GREENLET_DOCS_OUTPUT_DIR}/Doxyfile @ONLY)
file(GLOB_RECURSE greenlet_docs_inputs CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/include/greenlet/*.hpp ${PROJECT_SOURCE_DIR}/docs/*.md)
add_custom_target(docs
  COMMAND ${CMAKE_COMMAND} -E remove -f ${GREENLET_DOCS_OUTPUT_DIR}/doxygen-warnings.log
  COMMAND Doxygen::doxygen ${GREENLET_DOCS_OUTPUT_DIR}/Doxyfile
  COMMAND ${CMAKE_COMMAND} -DLOG=${GREENLET_DOCS_OUTPUT_DIR}/doxygen-warnings.log
          -P ${CMAKE_CURRENT_LIST_FILE}
  COMMAND ${CMAKE_COMMAND} -E echo "docs: ${GREENLET_DOCS_OUTPUT_DIR}/html/index.html"
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  SOURCES ${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_SOURCE_DIR}/README.md ${greenlet_docs_inputs}
  COMMENT "Doxygen: API reference into ${GREENLET_DOCS_OUTPUT_DIR}/html"
  VERBATIM)
