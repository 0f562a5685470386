#include "report/png.hpp"

#include <zlib.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace lungvol::report {
namespace {

constexpr std::array<std::uint8_t, 8> kSignature{137, 80, 78, 71, 13, 10, 26, 10};

void put_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xFF));
  out.push_back(static_cast<char>((v >> 16) & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
  out.push_back(static_cast<char>(v & 0xFF));
}

std::uint32_t get_u32(const std::string& s, std::size_t pos) {
  const auto b = [&](std::size_t n) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[pos + n]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

// A chunk is length, type, data, then the CRC of type + data.
void put_chunk(std::string& out, const char type[4], const std::uint8_t* data, std::size_t n) {
  put_u32(out, static_cast<std::uint32_t>(n));
  const std::size_t type_pos = out.size();
  out.append(type, 4);
  if (n > 0) out.append(reinterpret_cast<const char*>(data), n);
  const uLong crc =
      ::crc32(0L, reinterpret_cast<const Bytef*>(out.data() + type_pos), static_cast<uInt>(n + 4));
  put_u32(out, static_cast<std::uint32_t>(crc));
}

int paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

// The PNG filter's prediction of a byte from its left (a), upper (b) and upper-left (c)
// neighbours (PNG spec 9.2); type 0 predicts nothing.
int predictor(int type, int a, int b, int c) {
  switch (type) {
    case 1: return a;
    case 2: return b;
    case 3: return (a + b) / 2;
    case 4: return paeth(a, b, c);
    default: return 0;
  }
}

// Applies filter `type` to one row; `prev` is the unfiltered previous row (zeros for the
// first). bpp = bytes per pixel, the distance to the "left" byte.
void filter_row(int type, const std::uint8_t* row, const std::uint8_t* prev, std::size_t n,
                std::size_t bpp, std::uint8_t* out) {
  for (std::size_t x = 0; x < n; ++x) {
    const int a = x >= bpp ? row[x - bpp] : 0;
    const int b = prev[x];
    const int c = x >= bpp ? prev[x - bpp] : 0;
    const int pred = predictor(type, a, b, c);
    out[x] = static_cast<std::uint8_t>(row[x] - pred);
  }
}

// The usual heuristic: the filter whose output, read as signed bytes, has the smallest sum
// of magnitudes deflates best. Costs five passes over a row, negligible beside deflate.
std::vector<std::uint8_t> filtered_scanlines(const Raster& img) {
  const std::size_t bpp = static_cast<std::size_t>(img.channels);
  const std::size_t stride = img.width * bpp;
  std::vector<std::uint8_t> out(img.height * (stride + 1));
  const std::vector<std::uint8_t> zeros(stride, 0);
  std::vector<std::uint8_t> trial(stride);
  for (std::size_t y = 0; y < img.height; ++y) {
    const std::uint8_t* row = img.pixels.data() + y * stride;
    const std::uint8_t* prev = y > 0 ? row - stride : zeros.data();
    std::uint8_t* dst = out.data() + y * (stride + 1);
    unsigned long best_cost = std::numeric_limits<unsigned long>::max();
    for (int type = 0; type <= 4; ++type) {
      filter_row(type, row, prev, stride, bpp, trial.data());
      unsigned long cost = 0;
      for (std::uint8_t v : trial) cost += v < 128 ? v : 256u - v;
      if (cost < best_cost) {
        best_cost = cost;
        dst[0] = static_cast<std::uint8_t>(type);
        std::memcpy(dst + 1, trial.data(), stride);
      }
    }
  }
  return out;
}

}  // namespace

std::string encode_png(const Raster& img, int level) {
  if (img.width == 0 || img.height == 0 || (img.channels != 1 && img.channels != 3) ||
      img.pixels.size() != img.width * img.height * static_cast<std::size_t>(img.channels) ||
      img.width > 0x7FFFFFFFu || img.height > 0x7FFFFFFFu) {
    throw Error(ExitCode::kOutput,
                "cannot encode PNG: empty or inconsistent raster (" + std::to_string(img.width) +
                    "x" + std::to_string(img.height) + "x" + std::to_string(img.channels) + ")");
  }
  const std::vector<std::uint8_t> raw = filtered_scanlines(img);
  uLongf packed_size = ::compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> packed(packed_size);
  const int rc =
      ::compress2(packed.data(), &packed_size, raw.data(), static_cast<uLong>(raw.size()), level);
  if (rc != Z_OK) {
    throw Error(ExitCode::kOutput,
                "cannot encode PNG: zlib compress2 failed (" + std::to_string(rc) + ")");
  }

  std::string out(reinterpret_cast<const char*>(kSignature.data()), kSignature.size());
  std::string ihdr;
  put_u32(ihdr, static_cast<std::uint32_t>(img.width));
  put_u32(ihdr, static_cast<std::uint32_t>(img.height));
  ihdr.push_back(8);                          // bit depth
  ihdr.push_back(img.channels == 1 ? 0 : 2);  // colour type: grey or truecolour
  ihdr.push_back(0);                          // deflate
  ihdr.push_back(0);                          // adaptive filtering
  ihdr.push_back(0);                          // no interlace
  put_chunk(out, "IHDR", reinterpret_cast<const std::uint8_t*>(ihdr.data()), ihdr.size());
  put_chunk(out, "IDAT", packed.data(), packed_size);
  put_chunk(out, "IEND", nullptr, 0);
  return out;
}

void write_png(const std::string& path, const Raster& image, int level) {
  const std::string bytes = encode_png(image, level);
  write_stream_atomic(path, [&](std::ostream& out) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
}

Raster decode_png(const std::string& bytes, const std::string& source) {
  const auto fail = [&](const std::string& why) {
    return Error(ExitCode::kInput, "cannot read PNG '" + source + "': " + why);
  };
  if (bytes.size() < kSignature.size() ||
      std::memcmp(bytes.data(), kSignature.data(), kSignature.size()) != 0) {
    throw fail("not a PNG file (bad signature)");
  }
  Raster img;
  std::string idat;
  bool have_header = false, have_end = false;
  std::size_t pos = kSignature.size();
  while (pos + 12 <= bytes.size() && !have_end) {
    const std::uint32_t len = get_u32(bytes, pos);
    if (len > bytes.size() - pos - 12) throw fail("truncated chunk");
    const std::string type = bytes.substr(pos + 4, 4);
    const uLong crc = ::crc32(0L, reinterpret_cast<const Bytef*>(bytes.data() + pos + 4),
                              static_cast<uInt>(len + 4));
    if (crc != get_u32(bytes, pos + 8 + len)) throw fail("CRC mismatch in chunk " + type);
    const std::size_t data = pos + 8;
    if (type == "IHDR") {
      if (len != 13) throw fail("bad IHDR length");
      img.width = get_u32(bytes, data);
      img.height = get_u32(bytes, data + 4);
      const int depth = static_cast<unsigned char>(bytes[data + 8]);
      const int colour = static_cast<unsigned char>(bytes[data + 9]);
      if (depth != 8 || (colour != 0 && colour != 2)) {
        throw fail("only 8-bit greyscale or RGB is supported");
      }
      if (bytes[data + 10] != 0 || bytes[data + 11] != 0 || bytes[data + 12] != 0) {
        throw fail("unsupported compression, filter or interlace method");
      }
      img.channels = colour == 0 ? 1 : 3;
      have_header = true;
    } else if (type == "IDAT") {
      idat.append(bytes, data, len);
    } else if (type == "IEND") {
      have_end = true;
    } else if (!(type[0] & 0x20)) {
      throw fail("unknown critical chunk " + type);
    }
    pos += 12 + len;
  }
  if (!have_header || !have_end) throw fail("missing IHDR or IEND");
  if (img.width == 0 || img.height == 0) throw fail("zero image size");

  const std::size_t bpp = static_cast<std::size_t>(img.channels);
  const std::size_t stride = img.width * bpp;
  std::vector<std::uint8_t> raw(img.height * (stride + 1));
  uLongf raw_size = static_cast<uLongf>(raw.size());
  if (::uncompress(raw.data(), &raw_size, reinterpret_cast<const Bytef*>(idat.data()),
                   static_cast<uLong>(idat.size())) != Z_OK ||
      raw_size != raw.size()) {
    throw fail("image data does not inflate to the size IHDR announces");
  }

  img.pixels.assign(img.height * stride, 0);
  const std::vector<std::uint8_t> zeros(stride, 0);
  for (std::size_t y = 0; y < img.height; ++y) {
    const std::uint8_t type = raw[y * (stride + 1)];
    const std::uint8_t* src = raw.data() + y * (stride + 1) + 1;
    std::uint8_t* row = img.pixels.data() + y * stride;
    const std::uint8_t* prev = y > 0 ? row - stride : zeros.data();
    if (type > 4) throw fail("bad filter type on row " + std::to_string(y));
    for (std::size_t x = 0; x < stride; ++x) {
      const int a = x >= bpp ? row[x - bpp] : 0;
      const int b = prev[x];
      const int c = x >= bpp ? prev[x - bpp] : 0;
      const int pred = predictor(type, a, b, c);
      row[x] = static_cast<std::uint8_t>(src[x] + pred);
    }
  }
  return img;
}

Raster read_png(const std::string& path) { return decode_png(read_text_file(path), path); }

}  // namespace lungvol::report
