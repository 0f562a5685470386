#pragma once
// Internal to lungvol::io: one parsed DICOM header and the decoder that turns its frames into
// HU. DCMTK types stay behind a forward declaration.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

class DcmFileFormat;

namespace lungvol::io::detail {

// Below this HU a value is clamped (and counted); it leaves room for -3024-style padding.
constexpr int kMinHu = -1024 - 2048;
constexpr int kMaxHu = 32767;
// Beyond these limits a decoded value cannot come from a CT: the stream is corrupt or its
// signedness is mis-declared.
constexpr int kImplausibleLowHu = -4096;
constexpr double kImplausibleFraction = 0.001;
// Value given to pixels equal to PixelPaddingValue (outside the reconstruction circle): air.
constexpr int kPaddingHu = -1024;

struct FrameInfo {
  std::array<double, 3> ipp{0, 0, 0};
  bool has_ipp = false;
  std::array<double, 6> iop{0, 0, 0, 0, 0, 0};
  bool has_iop = false;
  double slope = 1.0;
  double intercept = 0.0;
  bool has_slope = false;      // RescaleSlope present (top level or functional groups)
  bool has_intercept = false;  // RescaleIntercept present
};

struct Header {
  std::string path;
  std::shared_ptr<DcmFileFormat> file;  // parsed without large values (loaded on demand)
  std::string sop_class, sop_instance, modality, image_type, series_uid, study_uid, study_date,
      patient_id, description, kernel, manufacturer, photometric, frame_of_reference_uid;
  std::string transfer_syntax;      // name
  std::string transfer_syntax_uid;
  int rows = 0, columns = 0, bits_allocated = 0, bits_stored = 0, high_bit = -1;
  int pixel_representation = 0, samples_per_pixel = 1, n_frames = 1;
  int n_frames_declared = 1;  // NumberOfFrames as written (1 when absent)
  bool has_pixel_data = false;
  bool enhanced = false;  // multi-frame with functional groups
  std::array<double, 2> pixel_spacing{0, 0};  // row spacing (between rows), column spacing
  bool has_pixel_spacing = false;
  double slice_thickness = 0;
  bool has_padding = false, has_padding_limit = false;
  std::uint16_t padding_raw = 0, padding_limit_raw = 0;
  std::vector<FrameInfo> frames;  // one per frame
  std::string parse_error;        // non-empty: the file is truncated / corrupt
  // The pixel data element as found in the header (its value stays on disk).
  bool encapsulated = false;
  std::uint64_t pixel_data_length = 0;  // native: the value length in bytes
  std::size_t fragments = 0;            // encapsulated: fragments after the offset table
  std::uint64_t fragment_bytes = 0;     // encapsulated: their total length
  std::size_t offset_table_entries = 0;  // encapsulated: Basic Offset Table entries (0 = empty)
  std::string float_pixel_data;         // "FloatPixelData" / "DoubleFloatPixelData" if present
  // Non-empty: the pixel module contradicts itself or the pixel data (sizes, bits, frames) or
  // uses an unsupported encoding. The file is refused with this text (never read "by chance").
  std::string defect;
};

// Decoded bytes a claim may reach per byte of encapsulated (compressed) pixel data. A constant
// 512 x 512 JPEG 2000 frame compresses to a few hundred bytes (about 2000:1); a header claiming
// more than this ratio is refused before any memory is allocated for it.
constexpr std::uint64_t kMaxCompressionRatio = 65536;

// Why the pixel module of `h` cannot be trusted ("" when it can): HighBit / BitsStored /
// BitsAllocated inconsistent, Rows x Columns x NumberOfFrames x bytes differing from the pixel
// data's length (native) or impossible for its fragments (encapsulated), float pixel data.
std::string pixel_module_defect(const Header& h);

void register_dcmtk_codecs();  // once, thread-safe

// Reads the header of `path` (no pixel data). Returns false with `reason` when the file is not
// DICOM at all; a DICOM file that fails part-way returns true with parse_error set.
bool read_header(const std::string& path, Header& out, std::string& reason);

// Skip reasons that mean "this file may belong to the series but could not be read": a series
// is refused while such a file sits next to it (see load_ct), never silently shortened.
inline constexpr const char* kUnreadablePrefix = "cannot read: ";
inline constexpr const char* kCorruptPrefix = "corrupt or truncated DICOM";
inline constexpr const char* kGzipPrefix = "gzip-compressed DICOM file";
inline bool is_unreadable_reason(const std::string& reason) {
  return reason.rfind(kUnreadablePrefix, 0) == 0 || reason.find(kCorruptPrefix) != std::string::npos ||
         reason.rfind(kGzipPrefix, 0) == 0;
}

struct DecodeStats {
  std::size_t clamped = 0;
  std::size_t padded = 0;
  std::string warning;  // e.g. signedness fixed
};

// Decodes every frame of `h` into `dst[f]` (rows*columns int16 HU each), releasing the
// file's memory afterwards. Throws Error(kDicom) naming the file and transfer syntax.
void decode_frames(Header& h, const std::vector<std::int16_t*>& dst, DecodeStats& stats);

}  // namespace lungvol::io::detail
