# Cap'n Proto and kj as static archives, for Joy and for plugins built
# against its SDK:
#
#   joy_capnproto_prefer_static(ON)       # before find_package(CapnProto)
#   find_package(CapnProto 0.9 REQUIRED CONFIG)
#   joy_capnproto_static_deps(ON)         # after
#
# Why: a plugin process is started on demand, and a cold start is mostly the
# dynamic loader. Binding kj's and Cap'n Proto's ~4,300 symbols at every
# start, and the page faults of writing their relocations, cost about 5 of
# the ~13 ms a bare `hello` took on the 2-vCPU VMs (task-clock 12.7 -> 7.2
# ms, page faults 256 -> 206; issue 4, B8). Linked statically, their
# references are resolved once, at link time. Every program links them one
# way: two copies of kj in one process would have two event-loop registries.
#
# CapnProtoTargets.cmake takes the library of each target from the cache
# variable CapnProto_<lib>_IMPORTED_LOCATION when it is set. Only archives
# beside the libraries pkg-config names (Debian's libcapnp-dev ships both)
# are taken, so that they match the headers; the archives' private
# dependencies are not in the .pc files, so they are added after.

set(_joy_capnp_libs kj kj-async kj-http kj-tls kj-gzip kj-test
                    capnp capnp-rpc capnp-json capnpc capnp-websocket)

macro(joy_capnproto_prefer_static static_libs)
  set(_joy_capnp_libdir "")
  if(${static_libs})
    find_package(PkgConfig QUIET)
    if(PKG_CONFIG_FOUND)
      pkg_get_variable(_joy_capnp_libdir capnp libdir)
    endif()
    if(NOT _joy_capnp_libdir)
      message(STATUS "Cap'n Proto: pkg-config names no libdir; linking the "
                     "shared libraries")
    endif()
  endif()
  foreach(_joy_lib IN LISTS _joy_capnp_libs)
    set(_joy_archive "${_joy_capnp_libdir}/lib${_joy_lib}.a")
    if(_joy_capnp_libdir AND EXISTS "${_joy_archive}")
      set(CapnProto_${_joy_lib}_IMPORTED_LOCATION "${_joy_archive}" CACHE
          FILEPATH "Cap'n Proto's ${_joy_lib}, linked statically" FORCE)
    elseif(CapnProto_${_joy_lib}_IMPORTED_LOCATION MATCHES "\\.a$")
      # Switched back: let CapnProtoTargets.cmake find the shared library.
      unset(CapnProto_${_joy_lib}_IMPORTED_LOCATION CACHE)
    endif()
  endforeach()
  unset(_joy_archive)
endmacro()

macro(joy_capnproto_static_deps static_libs)
  get_target_property(_joy_kj_type CapnProto::kj TYPE)
  if(_joy_kj_type STREQUAL "STATIC_LIBRARY")
    # One way for all: a shared library left among archives would bring a
    # second kj into the process.
    foreach(_joy_lib kj kj-async capnp capnp-rpc kj-tls)
      if(TARGET CapnProto::${_joy_lib})
        get_target_property(_joy_type CapnProto::${_joy_lib} TYPE)
        if(NOT _joy_type STREQUAL "STATIC_LIBRARY")
          message(FATAL_ERROR "CapnProto::${_joy_lib} is ${_joy_type} while "
                              "kj is static; reconfigure with a fresh cache")
        endif()
      endif()
    endforeach()
    find_package(Threads REQUIRED)
    set_property(TARGET CapnProto::kj APPEND PROPERTY
      INTERFACE_LINK_LIBRARIES Threads::Threads)
    # capnp.pc's Libs.private.
    set_property(TARGET CapnProto::capnp APPEND PROPERTY
      INTERFACE_LINK_LIBRARIES atomic)
    if(TARGET CapnProto::kj-tls)
      find_package(OpenSSL REQUIRED)
      set_property(TARGET CapnProto::kj-tls APPEND PROPERTY
        INTERFACE_LINK_LIBRARIES OpenSSL::SSL OpenSSL::Crypto)
    endif()
    # Joy does not use kj-gzip; it links only where zlib is installed.
    if(TARGET CapnProto::kj-gzip)
      find_package(ZLIB QUIET)
      if(ZLIB_FOUND)
        set_property(TARGET CapnProto::kj-gzip APPEND PROPERTY
          INTERFACE_LINK_LIBRARIES ZLIB::ZLIB)
      endif()
    endif()
  elseif(${static_libs})
    message(STATUS "Cap'n Proto: no static archives; linking the shared "
                   "libraries")
  endif()
  unset(_joy_kj_type)
  unset(_joy_type)
endmacro()
