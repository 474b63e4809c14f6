# Helpers that keep every folder's CMakeLists.txt to its dependency list.

# joy_add_library(NAME SRCS ... DEPS ...)
#   One static library per folder; its DEPS are the written architecture.
function(joy_add_library name)
  cmake_parse_arguments(arg "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${arg_SRCS})
  # Installed (the SDK), headers live under include/joy: "runtime/plugin.hpp".
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:include/joy>)
  target_link_libraries(${name} PUBLIC ${arg_DEPS})
endfunction()

# joy_add_executable(NAME SRCS ... DEPS ...)
function(joy_add_executable name)
  cmake_parse_arguments(arg "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${arg_SRCS})
  target_link_libraries(${name} PRIVATE ${arg_DEPS})
endfunction()
