# joy_add_plugin(NAME SRCS ... [MANIFEST plugin.json])
#
# Builds a C++ plugin against Joy::plugin and lays out an installable plugin
# folder at <build>/plugin/NAME: the manifest and the binary, named as the
# manifest's `entry`. Then: `joy install <build>/plugin/NAME`.
function(joy_add_plugin name)
  cmake_parse_arguments(arg "" "MANIFEST" "SRCS" ${ARGN})
  if(NOT arg_MANIFEST)
    set(arg_MANIFEST ${CMAKE_CURRENT_SOURCE_DIR}/plugin.json)
  endif()
  if(NOT IS_ABSOLUTE "${arg_MANIFEST}")
    set(arg_MANIFEST ${CMAKE_CURRENT_SOURCE_DIR}/${arg_MANIFEST})
  endif()
  if(NOT EXISTS "${arg_MANIFEST}")
    message(FATAL_ERROR "joy_add_plugin(${name}): no manifest at ${arg_MANIFEST}")
  endif()
  add_executable(${name} ${arg_SRCS})
  target_compile_features(${name} PRIVATE cxx_std_17)
  target_link_libraries(${name} PRIVATE Joy::plugin)
  set(out ${CMAKE_BINARY_DIR}/plugin/${name})
  add_custom_command(TARGET ${name} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${arg_MANIFEST} ${out}/plugin.json
    COMMAND ${CMAKE_COMMAND} -E copy_if_different $<TARGET_FILE:${name}> ${out}/${name}
    COMMENT "Laying out plugin folder plugin/${name}")
endfunction()
