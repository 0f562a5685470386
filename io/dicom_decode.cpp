// Pixel decoding: DCMTK for native, JPEG, JPEG-LS and RLE; GDCM for what DCMTK cannot decode
// (JPEG 2000). Stored values -> HU with the frame's own slope/intercept, padding -> air.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <gdcmImageReader.h>

#include "core/error.hpp"
#include <atomic>
#include <filesystem>
#include <unistd.h>
#include "io/dicom_internal.hpp"
#include "io/series.hpp"

namespace lungvol::io::detail {
namespace {

[[noreturn]] void fail(const Header& h, const std::string& what) {
  throw Error(ExitCode::kDicom, "cannot decode '" + h.path + "' (transfer syntax " +
                                    h.transfer_syntax + "): " + what);
}

struct Layout {
  int bits_allocated, bits_stored, pixel_representation;
};

// Raw pixels of all frames, either borrowed from DCMTK or owned (GDCM).
struct RawPixels {
  const void* data = nullptr;
  std::size_t bytes = 0;
  std::vector<char> owned;
  Layout layout{16, 16, 0};
};

bool dcmtk_pixels(Header& h, RawPixels& raw, std::string& why) {
  DcmDataset* ds = h.file->getDataset();
  const DcmXfer x(ds->getOriginalXfer());
  if (x.isEncapsulated()) {
    const OFCondition c = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit)) {
      why = std::string("DCMTK: ") + (c.bad() ? c.text() : "no decoder");
      return false;
    }
  }
  DcmElement* px = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, px).bad() || !px) {
    why = "no pixel data";
    return false;
  }
  // Decoders may rewrite the pixel module (e.g. bits allocated); re-read it.
  Uint16 u = 0;
  raw.layout.bits_allocated = ds->findAndGetUint16(DCM_BitsAllocated, u).good() ? u : h.bits_allocated;
  raw.layout.bits_stored = ds->findAndGetUint16(DCM_BitsStored, u).good() ? u : h.bits_stored;
  raw.layout.pixel_representation =
      ds->findAndGetUint16(DCM_PixelRepresentation, u).good() ? u : h.pixel_representation;
  OFCondition c;
  if (raw.layout.bits_allocated == 8) {
    Uint8* p = nullptr;
    c = px->getUint8Array(p);
    raw.data = p;
  } else {
    Uint16* p = nullptr;
    c = px->getUint16Array(p);
    raw.data = p;
  }
  if (c.bad() || !raw.data) {
    why = std::string("pixel data unreadable (") + c.text() + ")";
    return false;
  }
  raw.bytes = px->getLength();
  return true;
}

bool gdcm_pixels(Header& h, RawPixels& raw, std::string& why) {
  // GDCM's parser aborts the process (a failed assertion in Debian's build) on some malformed
  // files that DCMTK parses without complaint. GDCM therefore reads DCMTK's re-encoding of
  // the dataset, with the compressed pixel data copied as is, never the original bytes.
  static std::atomic<unsigned> counter{0};
  const std::string tmp =
      (std::filesystem::temp_directory_path() /
       ("lungvol_j2k_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".dcm"))
          .string();
  struct Remove {
    std::string path;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } remove_tmp{tmp};
  DcmFileFormat full;
  const OFCondition loaded = [&] {
    io::StopParsingAfterPixelData stop;
    return full.loadFile(OFFilename(h.path.c_str()));
  }();
  if (loaded.bad()) {
    why = std::string("cannot read the dataset (") + loaded.text() + ")";
    return false;
  }
  const E_TransferSyntax xfer = full.getDataset()->getOriginalXfer();
  // A fresh file meta header: the original's may be damaged too.
  const OFCondition saved = full.saveFile(tmp.c_str(), xfer, EET_ExplicitLength, EGL_recalcGL,
                                           EPD_noChange, 0, 0, EWM_createNewMeta);
  if (saved.bad()) {
    why = std::string("cannot re-encode the dataset for the JPEG 2000 decoder (") + saved.text() + ")";
    return false;
  }
  gdcm::ImageReader reader;
  reader.SetFileName(tmp.c_str());
  if (!reader.Read()) {
    why = "GDCM cannot read the file";
    return false;
  }
  const gdcm::Image& img = reader.GetImage();
  raw.owned.resize(img.GetBufferLength());
  if (raw.owned.empty() || !img.GetBuffer(raw.owned.data())) {
    why = "GDCM cannot decode the pixel data";
    return false;
  }
  const gdcm::PixelFormat& pf = img.GetPixelFormat();
  raw.layout.bits_allocated = pf.GetBitsAllocated();
  raw.layout.bits_stored = pf.GetBitsStored();
  // GDCM reports the codestream's signedness where it disagrees with the header (JPEG 2000).
  raw.layout.pixel_representation = pf.GetPixelRepresentation();
  raw.data = raw.owned.data();
  raw.bytes = raw.owned.size();
  return true;
}

template <class T>
void to_hu(const Header& h, const T* src, const Layout& layout, std::size_t n,
           const FrameInfo& f, std::int16_t* dst, DecodeStats& stats, std::size_t& implausible) {
  const int bits = std::clamp(layout.bits_stored, 1, static_cast<int>(8 * sizeof(T)));
  const int shift = 32 - bits;
  const bool is_signed = layout.pixel_representation == 1;
  const std::uint32_t mask = bits >= 32 ? 0xffffffffu : ((1u << bits) - 1u);
  auto stored = [&](std::uint32_t r) -> std::int32_t {
    if (is_signed) return static_cast<std::int32_t>(r << shift) >> shift;  // sign-extend
    return static_cast<std::int32_t>(r & mask);
  };
  std::int32_t pad_lo = 1, pad_hi = 0;  // empty range
  if (h.has_padding) {
    pad_lo = stored(h.padding_raw);
    pad_hi = h.has_padding_limit ? stored(h.padding_limit_raw) : pad_lo;
    if (pad_lo > pad_hi) std::swap(pad_lo, pad_hi);
  }
  // The common case (slope 1, integer intercept) needs no floating-point rounding.
  const bool integer_rescale = f.slope == 1.0 && f.intercept == std::floor(f.intercept) &&
                               std::abs(f.intercept) < 1e6;
  const std::int32_t int_intercept = integer_rescale ? static_cast<std::int32_t>(f.intercept) : 0;
  std::size_t clamped = 0, padded = 0, bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t v = stored(src[i]);
    if (v >= pad_lo && v <= pad_hi) {
      dst[i] = kPaddingHu;
      ++padded;
      continue;
    }
    const double hu = integer_rescale ? static_cast<double>(v + int_intercept)
                                      : std::nearbyint(v * f.slope + f.intercept);
    if (hu < kMinHu || hu > kMaxHu) {
      ++clamped;
      if (hu < kImplausibleLowHu || hu > kMaxHu) ++bad;
      dst[i] = static_cast<std::int16_t>(hu < kMinHu ? kMinHu : kMaxHu);
    } else {
      dst[i] = static_cast<std::int16_t>(hu);
    }
  }
  stats.clamped += clamped;
  stats.padded += padded;
  implausible += bad;
}

}  // namespace

void decode_frames(Header& h, const std::vector<std::int16_t*>& dst, DecodeStats& stats) {
  if (!h.parse_error.empty()) {
    throw Error(ExitCode::kDicom, "cannot read '" + h.path + "': " + h.parse_error);
  }
  if (!h.file) fail(h, "header not loaded");
  if (!h.defect.empty()) fail(h, h.defect);
  if (h.samples_per_pixel != 1) fail(h, "not a grayscale image");
  if (h.bits_allocated != 8 && h.bits_allocated != 16) {
    fail(h, "BitsAllocated " + std::to_string(h.bits_allocated) + " is not supported");
  }
  const std::size_t frame_px = static_cast<std::size_t>(h.rows) * static_cast<std::size_t>(h.columns);
  const std::size_t n_frames = dst.size();
  RawPixels raw;
  std::string why_dcmtk, why_gdcm;
  bool ok = dcmtk_pixels(h, raw, why_dcmtk);
  if (!ok) {
    h.file->clear();  // free what DCMTK loaded before GDCM reads the file again
    ok = gdcm_pixels(h, raw, why_gdcm);
  }
  if (!ok) fail(h, why_dcmtk + "; " + why_gdcm);
  if (raw.layout.bits_allocated != 8 && raw.layout.bits_allocated != 16) {
    fail(h, "decoded BitsAllocated " + std::to_string(raw.layout.bits_allocated) + " is not supported");
  }
  const std::size_t bytes_per = static_cast<std::size_t>(raw.layout.bits_allocated / 8);
  // Exactly the claimed size (plus the pad byte of an odd length): a longer buffer would be
  // read sheared, a shorter one is truncated.
  const std::size_t expected = frame_px * n_frames * bytes_per;
  if (raw.bytes != expected && raw.bytes != expected + expected % 2) {
    fail(h, "pixel data holds " + std::to_string(raw.bytes) + " bytes, " +
                std::to_string(expected) + " expected from Rows x Columns x NumberOfFrames" +
                (raw.bytes < expected ? " (truncated?)" : ""));
  }
  if (raw.layout.pixel_representation != h.pixel_representation) {
    stats.warning = "'" + h.path + "': header PixelRepresentation " +
                    std::to_string(h.pixel_representation) +
                    " disagrees with the codestream; the codestream's signedness was used";
  }
  auto convert = [&](const Layout& layout, DecodeStats& st) {
    std::size_t implausible = 0;
    for (std::size_t f = 0; f < n_frames; ++f) {
      const FrameInfo& fi = h.frames.at(f);
      if (bytes_per == 1) {
        to_hu(h, static_cast<const std::uint8_t*>(raw.data) + f * frame_px, layout, frame_px, fi,
              dst[f], st, implausible);
      } else {
        to_hu(h, static_cast<const std::uint16_t*>(raw.data) + f * frame_px, layout, frame_px, fi,
              dst[f], st, implausible);
      }
    }
    return implausible;
  };
  const double limit = kImplausibleFraction * static_cast<double>(frame_px * n_frames);
  DecodeStats first;
  std::size_t implausible = convert(raw.layout, first);
  if (static_cast<double>(implausible) > limit && raw.layout.pixel_representation == 0 &&
      raw.layout.bits_stored == 16 && bytes_per == 2) {
    // Known encoder bug (e.g. Toshiba JPEG 2000): signed samples under an unsigned header. Accept
    // the signed reading only if it is plausible, and say so.
    Layout as_signed = raw.layout;
    as_signed.pixel_representation = 1;
    DecodeStats second;
    const std::size_t again = convert(as_signed, second);
    if (static_cast<double>(again) <= limit) {
      implausible = again;
      first = second;
      first.warning = "'" + h.path + "': PixelRepresentation says unsigned but the values are "
                      "signed (implausible as unsigned); read as signed";
    } else {
      first = DecodeStats{};
      convert(raw.layout, first);  // restore the header's reading for the error below
    }
  }
  stats.clamped += first.clamped;
  stats.padded += first.padded;
  if (!first.warning.empty()) stats.warning = first.warning;
  h.file.reset();  // the decoded copy is in `dst`; drop DCMTK's buffers now
  if (static_cast<double>(implausible) > limit) {
    fail(h, std::to_string(implausible) + " of " + std::to_string(frame_px * n_frames) +
                " decoded values are outside [" + std::to_string(kImplausibleLowHu) + ", " +
                std::to_string(kMaxHu) +
                "] HU, impossible for CT: the pixel stream is corrupt or its signedness is "
                "mis-declared");
  }
}

}  // namespace lungvol::io::detail
