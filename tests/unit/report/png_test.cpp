#include "report/png.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>

#include "core/error.hpp"
#include "tests/support/test_paths.hpp"
#include "tests/unit/report/libpng_helpers.hpp"

namespace lungvol::report {
namespace {

// Smooth gradients (which the row filters predict) mixed with a pseudo-random speckle
// (which they do not), so every filter type gets chosen somewhere.
Raster pattern(std::size_t w, std::size_t h, int channels) {
  Raster r(w, h, channels);
  std::uint32_t state = 12345;
  for (std::size_t y = 0; y < h; ++y) {
    for (std::size_t x = 0; x < w; ++x) {
      for (int c = 0; c < channels; ++c) {
        state = state * 1664525u + 1013904223u;
        const bool noisy = (x / 16 + y / 16) % 3 == 0;
        const auto v = noisy ? (state >> 24) : (x * 3 + y * 5 + static_cast<std::size_t>(c) * 40);
        r.at(x, y)[c] = static_cast<std::uint8_t>(v);
      }
    }
  }
  return r;
}

TEST(Png, LibpngDecodesWhatWeWrite) {
  for (int channels : {1, 3}) {
    for (auto [w, h] : {std::pair<std::size_t, std::size_t>{1, 1}, {7, 3}, {3, 7}, {301, 203}}) {
      const Raster in = pattern(w, h, channels);
      const Raster back = test::libpng_decode(encode_png(in));
      ASSERT_EQ(back.width, w);
      ASSERT_EQ(back.height, h);
      ASSERT_EQ(back.channels, channels);
      EXPECT_EQ(back.pixels, in.pixels) << w << "x" << h << "x" << channels;
    }
  }
}

TEST(Png, WeDecodeWhatLibpngWrites) {
  for (int channels : {1, 3}) {
    const Raster in = pattern(97, 61, channels);
    const Raster back = decode_png(test::libpng_encode(in));
    EXPECT_EQ(back.width, 97u);
    EXPECT_EQ(back.height, 61u);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, in.pixels);
  }
}

TEST(Png, FileRoundTripAndHeaderBytes) {
  const std::string dir = test::temp_dir("png");
  const std::string path = dir + "/x.png";
  const Raster in = pattern(40, 30, 3);
  write_png(path, in);
  const Raster back = read_png(path);
  EXPECT_EQ(back.pixels, in.pixels);
  EXPECT_EQ(test::libpng_read(path).pixels, in.pixels);
  // Signature then IHDR: width 40, height 30, depth 8, colour type 2 (RGB).
  const std::string bytes = encode_png(in);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n"));
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(static_cast<unsigned char>(bytes[19]), 40u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[23]), 30u);
  EXPECT_EQ(bytes[24], 8);
  EXPECT_EQ(bytes[25], 2);
  EXPECT_EQ(bytes.substr(bytes.size() - 8, 4), "IEND");
  // Only the final file exists in the directory (atomic write leaves no temporary).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir),
                          std::filesystem::directory_iterator{}),
            1);
}

TEST(Png, UniformImageCompressesWell) {
  const Raster flat(512, 512, 3, 77);
  EXPECT_LT(encode_png(flat).size(), 5000u);  // 786 kB of pixels
}

TEST(Png, CorruptionIsAnInputError) {
  std::string bytes = encode_png(pattern(10, 10, 1));
  bytes[45] = static_cast<char>(bytes[45] ^ 0x55);  // inside IDAT: CRC no longer matches
  EXPECT_THROW(decode_png(bytes, "bad.png"), Error);
  EXPECT_THROW(decode_png("not a png"), Error);
  EXPECT_THROW(decode_png(bytes.substr(0, 30)), Error);
  try {
    decode_png(bytes, "bad.png");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find("bad.png"), std::string::npos);
  }
}

TEST(Png, EmptyRasterIsRefused) {
  EXPECT_THROW(encode_png(Raster{}), Error);
  Raster bad(4, 4, 3);
  bad.pixels.pop_back();
  EXPECT_THROW(encode_png(bad), Error);
}

}  // namespace
}  // namespace lungvol::report
