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
if(LUNGVOL_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# ITK's use-file adds global include dirs and IO factory registration; keep it to the
# io library only (ITK headers never appear in our public headers).
set(LUNGVOL_ITK_LIBRARIES ${ITK_LIBRARIES})
