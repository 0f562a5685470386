# Every dependency is a Debian 12 package (see scripts/setup.sh); nothing is downloaded.
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Threads REQUIRED)
find_package(ITK 5.2 REQUIRED COMPONENTS ITKCommon ITKIOImageBase ITKIONIFTI ITKIONRRD ITKIOMeta ITKIOGDCM ITKIOPNG)
find_package(DCMTK REQUIRED CONFIG)
find_package(nlohmann_json 3 REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(CLI11 REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(ZLIB REQUIRED)
# R 4.2.2's standalone math library (Debian r-mathlib): qnorm, pwilcox, qwilcox, signif as R
# computes them, for statistics identical to R's wilcox.test (trial/rmath.cpp).
find_path(RMATH_INCLUDE_DIR Rmath.h PATHS /usr/include NO_DEFAULT_PATH)
find_path(RMATH_INCLUDE_DIR Rmath.h)
find_library(RMATH_LIBRARY Rmath)
if(NOT RMATH_INCLUDE_DIR OR NOT RMATH_LIBRARY)
  message(FATAL_ERROR "libRmath not found: install the Debian package r-mathlib (scripts/setup.sh)")
endif()
add_library(Rmath::Rmath UNKNOWN IMPORTED)
set_target_properties(Rmath::Rmath PROPERTIES IMPORTED_LOCATION "${RMATH_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${RMATH_INCLUDE_DIR}")
if(LUNGVOL_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# ITK's use-file adds global include dirs and IO factory registration; keep it to the
# io library only (ITK headers never appear in our public headers).
set(LUNGVOL_ITK_LIBRARIES ${ITK_LIBRARIES})
