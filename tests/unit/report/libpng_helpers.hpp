#pragma once
// Reference PNG codec for tests: libpng's simplified API.
#include <string>

#include "report/png.hpp"

namespace lungvol::test {

report::Raster libpng_read(const std::string& path);
report::Raster libpng_decode(const std::string& bytes);
std::string libpng_encode(const report::Raster& image);

}  // namespace lungvol::test
