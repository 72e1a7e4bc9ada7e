# Find every third-party dependency once, as imported targets, naming the Debian package to
# install when one is missing.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()

function(kb_require_pc target module package)
  pkg_check_modules(${target} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "${module} not found: apt-get install ${package}")
  endif()
endfunction()

kb_require_pc(KB_LMDB lmdb liblmdb-dev)
kb_require_pc(KB_CJSON libcjson libcjson-dev)
kb_require_pc(KB_OPENBLAS openblas libopenblas-dev)
kb_require_pc(KB_LAPACKE lapacke liblapacke-dev)
kb_require_pc(KB_ZLIB zlib zlib1g-dev)

find_path(KB_SVM_INCLUDE_DIR libsvm/svm.h)
find_library(KB_SVM_LIBRARY NAMES svm)
if(NOT KB_SVM_INCLUDE_DIR OR NOT KB_SVM_LIBRARY)
  message(FATAL_ERROR "libsvm not found: apt-get install libsvm-dev")
endif()
add_library(kb_libsvm UNKNOWN IMPORTED GLOBAL)
set_target_properties(kb_libsvm PROPERTIES
  IMPORTED_LOCATION "${KB_SVM_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${KB_SVM_INCLUDE_DIR}")

find_package(Threads REQUIRED)
