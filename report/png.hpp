#pragma once
// A minimal PNG codec for QC images: 8-bit greyscale or RGB, no interlacing, no metadata.
// Our own encoder on zlib (deflate + crc32); the decoder exists so tests can check what
// was written, and reads any non-interlaced 8-bit grey/RGB PNG (all five row filters).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lungvol::report {

// Row-major pixels, channels interleaved (RGBRGB...), top row first.
struct Raster {
  std::size_t width = 0;
  std::size_t height = 0;
  int channels = 1;  // 1 = grey, 3 = RGB
  std::vector<std::uint8_t> pixels;

  Raster() = default;
  Raster(std::size_t w, std::size_t h, int c, std::uint8_t fill = 0)
      : width(w), height(h), channels(c), pixels(w * h * static_cast<std::size_t>(c), fill) {}
  std::uint8_t* at(std::size_t x, std::size_t y) {
    return pixels.data() + (y * width + x) * static_cast<std::size_t>(channels);
  }
  const std::uint8_t* at(std::size_t x, std::size_t y) const {
    return pixels.data() + (y * width + x) * static_cast<std::size_t>(channels);
  }
};

// The complete PNG file as bytes. `level` is zlib's 0..9 (6 balances speed and size).
// Throws Error(kOutput) for an empty or inconsistent raster.
std::string encode_png(const Raster& image, int level = 6);
// Written under a temporary name and renamed (core/fs.hpp).
void write_png(const std::string& path, const Raster& image, int level = 6);

// Throws Error(kInput) naming `source` for anything that is not a valid 8-bit grey/RGB PNG.
Raster decode_png(const std::string& bytes, const std::string& source = "<memory>");
Raster read_png(const std::string& path);

}  // namespace lungvol::report
