# joy_find_capnproto(STATIC_LIBS)
#
# Finds Cap'n Proto and kj; with STATIC_LIBS true, their CapnProto:: targets
# name Debian's static archives instead of the shared libraries.
#
# Why: a plugin process is started on demand, and a cold start is mostly the
# dynamic loader. Binding kj's and Cap'n Proto's ~4,300 symbols at every
# start cost about 5 of the ~13 ms a bare `hello` took on the 2-vCPU VMs
# (task-clock 12.7 -> 7.2 ms, page faults 256 -> 206; issue 4, B8).
# Linked statically, their references are resolved once, at link time.
# Every program links them one way: two copies of kj in one process would
# have two event-loop registries.
#
# CapnProtoTargets.cmake takes the library of each target from the cache
# variable CapnProto_<lib>_IMPORTED_LOCATION when it is set, and the
# archives' private dependencies are not in the pkg-config files it reads,
# so they are added here.
macro(joy_find_capnproto static_libs)
  set(_joy_capnp_libs kj kj-async kj-http kj-tls kj-gzip kj-test
                      capnp capnp-rpc capnp-json capnpc capnp-websocket)
  foreach(_joy_lib IN LISTS _joy_capnp_libs)
    if(${static_libs})
      find_library(_joy_capnp_${_joy_lib}_archive NAMES lib${_joy_lib}.a)
      if(_joy_capnp_${_joy_lib}_archive)
        set(CapnProto_${_joy_lib}_IMPORTED_LOCATION
            ${_joy_capnp_${_joy_lib}_archive} CACHE FILEPATH
            "Cap'n Proto's ${_joy_lib}, linked statically" FORCE)
      endif()
    elseif(CapnProto_${_joy_lib}_IMPORTED_LOCATION MATCHES "\\.a$")
      # Switched back: let CapnProtoTargets.cmake find the shared library.
      unset(CapnProto_${_joy_lib}_IMPORTED_LOCATION CACHE)
    endif()
  endforeach()
  find_package(CapnProto 0.9 REQUIRED CONFIG)
  get_target_property(_joy_kj_type CapnProto::kj TYPE)
  if(_joy_kj_type STREQUAL "STATIC_LIBRARY")
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
    if(TARGET CapnProto::kj-gzip)
      find_package(ZLIB REQUIRED)
      set_property(TARGET CapnProto::kj-gzip APPEND PROPERTY
        INTERFACE_LINK_LIBRARIES ZLIB::ZLIB)
    endif()
  endif()
  unset(_joy_kj_type)
  unset(_joy_capnp_libs)
endmacro()
