# Installs Joy: programs, the plugin SDK (static libraries joy_schema,
# joy_runtime, joy_plugin and their headers) and the CMake package that
# plugins outside this repository use:
#
#   cmake --install build --prefix ~/.local
#   cmake -S my-plugin -B my-plugin/build -DCMAKE_PREFIX_PATH=~/.local
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(JOY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Joy)

# joyd finds its helpers beside itself: joy-exec, and the hosts of the
# gpu service and of Python plugins.
install(TARGETS joy joyd joy-exec joy-gpu-host RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET joy-python-host)
  install(TARGETS joy-python-host RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
# cuBLAS is the toolkit's shared library: the installed gpu host keeps the
# path it was linked with.
set_target_properties(joy-gpu-host PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)

set_target_properties(joy_schema PROPERTIES EXPORT_NAME schema)
set_target_properties(joy_runtime PROPERTIES EXPORT_NAME runtime)
set_target_properties(joy_plugin PROPERTIES EXPORT_NAME plugin)
install(TARGETS joy_schema joy_runtime joy_plugin
  EXPORT JoyTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})

install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/joy/runtime
  FILES_MATCHING PATTERN "*.hpp"
  # The ImJoy file readers are Joy's own, not the SDK's.
  PATTERN "imjoy_file.hpp" EXCLUDE
  PATTERN "yaml_config.hpp" EXCLUDE)
install(FILES ${JOY_SCHEMA_HEADERS}
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/joy/schema)

install(EXPORT JoyTargets NAMESPACE Joy:: DESTINATION ${JOY_CMAKE_DIR})
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/sdk/JoyConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sdk/JoyConfig.cmake
  INSTALL_DESTINATION ${JOY_CMAKE_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/sdk/JoyConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/sdk/JoyConfig.cmake
  ${PROJECT_BINARY_DIR}/sdk/JoyConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/sdk/JoyPlugin.cmake
  ${PROJECT_SOURCE_DIR}/cmake/sdk/JoyCapnProto.cmake
  ${PROJECT_SOURCE_DIR}/cmake/FindCAF.cmake
  DESTINATION ${JOY_CMAKE_DIR})

# Running nodes as a service: the systemd unit (ExecStart names the prefix
# it is installed under) and the cluster's guide.
configure_file(${PROJECT_SOURCE_DIR}/deploy/joyd.service
  ${PROJECT_BINARY_DIR}/deploy/joyd.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/deploy/joyd.service
  DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/docs/cluster.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
