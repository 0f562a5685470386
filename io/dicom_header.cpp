// Header-only DICOM parsing for discovery: large values (pixel data) stay on disk until the
// decoder asks for them, so discovery costs one small read per file and the later decode
// reuses the same parsed object (no second parse).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <ostream>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcobject.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <fmt/format.h>
#include <gdcmTrace.h>
#include <zlib.h>

#include "io/dicom_internal.hpp"
#include "io/series.hpp"

namespace lungvol::io::detail {
namespace {

// Values longer than this are not read during discovery.
constexpr Uint32 kMaxHeaderValue = 4096;

std::string get_string(DcmItem& item, const DcmTagKey& tag) {
  OFString s;
  if (item.findAndGetOFStringArray(tag, s).good()) {
    std::string out = s.c_str();
    while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
    return out;
  }
  return {};
}

int get_int(DcmItem& item, const DcmTagKey& tag, int fallback) {
  Uint16 u = 0;
  if (item.findAndGetUint16(tag, u).good()) return u;
  const std::string s = get_string(item, tag);
  if (!s.empty()) {
    try {
      return std::stoi(s);
    } catch (...) {
    }
  }
  return fallback;
}

bool get_doubles(DcmItem& item, const DcmTagKey& tag, double* out, int n) {
  for (int i = 0; i < n; ++i) {
    Float64 v = 0;
    if (item.findAndGetFloat64(tag, v, static_cast<unsigned long>(i)).bad()) return false;
    out[i] = v;
  }
  return true;
}

bool get_raw16(DcmItem& item, const DcmTagKey& tag, std::uint16_t& out) {
  Uint16 u = 0;
  if (item.findAndGetUint16(tag, u).good()) {
    out = u;
    return true;
  }
  Sint16 s = 0;
  if (item.findAndGetSint16(tag, s).good()) {
    out = static_cast<std::uint16_t>(s);
    return true;
  }
  return false;
}

DcmItem* sub_item(DcmItem* parent, const DcmTagKey& seq) {
  DcmItem* item = nullptr;
  if (parent && parent->findAndGetSequenceItem(seq, item, 0).good()) return item;
  return nullptr;
}

// Functional groups (Enhanced CT): per-frame values override the shared ones.
void read_frame_groups(DcmItem* group, Header& h, FrameInfo& f) {
  if (!group) return;
  if (DcmItem* m = sub_item(group, DCM_PixelMeasuresSequence)) {
    double ps[2];
    if (get_doubles(*m, DCM_PixelSpacing, ps, 2)) {
      h.pixel_spacing = {ps[0], ps[1]};
      h.has_pixel_spacing = true;
    }
    double t = 0;
    if (get_doubles(*m, DCM_SliceThickness, &t, 1)) h.slice_thickness = t;
  }
  if (DcmItem* o = sub_item(group, DCM_PlaneOrientationSequence)) {
    if (get_doubles(*o, DCM_ImageOrientationPatient, f.iop.data(), 6)) f.has_iop = true;
  }
  if (DcmItem* p = sub_item(group, DCM_PlanePositionSequence)) {
    if (get_doubles(*p, DCM_ImagePositionPatient, f.ipp.data(), 3)) f.has_ipp = true;
  }
  if (DcmItem* r = sub_item(group, DCM_PixelValueTransformationSequence)) {
    double v = 0;
    if (get_doubles(*r, DCM_RescaleSlope, &v, 1)) {
      f.slope = v;
      f.has_slope = true;
    }
    if (get_doubles(*r, DCM_RescaleIntercept, &v, 1)) {
      f.intercept = v;
      f.has_intercept = true;
    }
  }
}

// A cheap look at the first bytes: "DICM" at 128, or a dataset starting with group 0002/0008
// (files without preamble). Keeps non-DICOM files (NIfTI, text) away from the parser.
bool looks_like_dicom_bytes(const unsigned char* buf, long got) {
  if (got == 132 && std::memcmp(buf + 128, "DICM", 4) == 0) return true;
  if (got < 8) return false;
  const unsigned group_le = buf[0] | (buf[1] << 8);
  const unsigned group_be = (buf[0] << 8) | buf[1];
  return group_le == 0x0002 || group_le == 0x0008 || group_be == 0x0008;
}

bool looks_like_dicom(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  unsigned char buf[132] = {};
  in.read(reinterpret_cast<char*>(buf), sizeof buf);
  return looks_like_dicom_bytes(buf, static_cast<long>(in.gcount()));
}

bool is_gzip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char magic[2] = {0, 0};
  in.read(reinterpret_cast<char*>(magic), 2);
  return in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

// The first bytes of a gzip file, decompressed: does it hold a DICOM file?
bool gzip_holds_dicom(const std::string& path) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (!in) return false;
  unsigned char buf[132] = {};
  const int got = gzread(in, buf, sizeof buf);
  gzclose(in);
  return got > 0 && looks_like_dicom_bytes(buf, got);
}

// The pixel data element as the header parse found it: length (native) or fragments
// (encapsulated). Values stay on disk.
void read_pixel_data_layout(DcmDataset& ds, E_TransferSyntax xfer, Header& h) {
  DcmElement* px = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, px).bad() || !px) return;
  h.has_pixel_data = true;
  auto* pd = dynamic_cast<DcmPixelData*>(px);
  DcmPixelSequence* seq = nullptr;
  if (DcmXfer(xfer).isEncapsulated() && pd &&
      pd->getEncapsulatedRepresentation(xfer, nullptr, seq).good() && seq) {
    h.encapsulated = true;
    const unsigned long n = seq->card();
    for (unsigned long i = 0; i < n; ++i) {
      DcmPixelItem* item = nullptr;
      if (seq->getItem(item, i).bad() || !item) continue;
      if (i == 0) {
        h.offset_table_entries = item->getLength() / 4;
      } else {
        ++h.fragments;
        h.fragment_bytes += item->getLength();
      }
    }
    return;
  }
  h.pixel_data_length = px->getLength();
}

std::ostream& gdcm_sink() {
  static std::ostream sink(nullptr);  // discards: our errors carry GDCM's failures
  return sink;
}

}  // namespace

std::string pixel_module_defect(const Header& h) {
  if (!h.float_pixel_data.empty()) {
    return h.float_pixel_data +
           " (floating-point pixels) is unsupported: lungvol reads CT stored as integer PixelData "
           "only";
  }
  if (h.n_frames_declared < 1) {
    return fmt::format("NumberOfFrames {} is not a frame count", h.n_frames_declared);
  }
  if (h.bits_allocated != 8 && h.bits_allocated != 16) {
    return fmt::format("BitsAllocated {} is unsupported (8 or 16)", h.bits_allocated);
  }
  if (h.bits_stored < 1 || h.bits_stored > h.bits_allocated) {
    return fmt::format("BitsStored {} with BitsAllocated {} is impossible", h.bits_stored,
                       h.bits_allocated);
  }
  if (h.high_bit != h.bits_stored - 1) {
    return fmt::format("HighBit {} with BitsStored {}: HighBit must be BitsStored - 1 (CT Image "
                       "module), so which bits hold the value is unknown",
                       h.high_bit, h.bits_stored);
  }
  const std::uint64_t bytes = static_cast<std::uint64_t>(h.bits_allocated / 8);
  const std::uint64_t claimed = static_cast<std::uint64_t>(h.rows) *
                                static_cast<std::uint64_t>(h.columns) *
                                static_cast<std::uint64_t>(h.n_frames) * bytes;
  const std::string claim = fmt::format(
      "Rows x Columns x NumberOfFrames x BitsAllocated/8 = {} x {} x {} x {} = {} bytes", h.rows,
      h.columns, h.n_frames, bytes, claimed);
  if (!h.encapsulated) {
    // An odd length is padded with one byte (PS3.5 7.1.1).
    if (h.pixel_data_length != claimed && h.pixel_data_length != claimed + (claimed % 2)) {
      return fmt::format("the pixel data holds {} bytes, but {}", h.pixel_data_length, claim);
    }
    return {};
  }
  if (h.fragments < static_cast<std::size_t>(h.n_frames)) {
    return fmt::format("NumberOfFrames {}, but the encapsulated pixel data holds {} fragment(s) "
                       "(at least one per frame)",
                       h.n_frames, h.fragments);
  }
  if (h.offset_table_entries > 0 && h.offset_table_entries != static_cast<std::size_t>(h.n_frames)) {
    return fmt::format("NumberOfFrames {}, but the Basic Offset Table lists {} frames", h.n_frames,
                       h.offset_table_entries);
  }
  if (claimed > kMaxCompressionRatio * std::max<std::uint64_t>(1, h.fragment_bytes)) {
    return fmt::format("{}, from {} bytes of compressed pixel data (more than {}:1): the sizes "
                       "are not believable",
                       claim, h.fragment_bytes, kMaxCompressionRatio);
  }
  return {};
}

}  // namespace lungvol::io::detail

namespace lungvol::io {

void init_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    // DCMTK logs its own complaints to stderr by default: they would appear between lungvol's
    // messages, unformatted. Our errors carry the condition text instead.
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);
    // Some archives re-encode every tag as VR UN; let DCMTK restore the dictionary VR.
    dcmEnableUnknownVRConversion.set(OFTrue);
  });
}

namespace {
std::mutex& stop_mutex() {
  static std::mutex m;
  return m;
}
int stop_users = 0;
DcmTagKey stop_before;  // the setting to restore when the last user is done
}  // namespace

// DCMTK's stop tag is process-wide. It is set only while lungvol parses (a counter: parses
// run on several threads), so other code loading and saving DICOM in the same process (tests
// editing a file in place, for one) sees DCMTK's default behaviour.
StopParsingAfterPixelData::StopParsingAfterPixelData() {
  std::lock_guard<std::mutex> lock(stop_mutex());
  if (stop_users++ == 0) {
    stop_before = dcmStopParsingAfterElement.get();
    dcmStopParsingAfterElement.set(DCM_PixelData);
  }
}

StopParsingAfterPixelData::~StopParsingAfterPixelData() {
  std::lock_guard<std::mutex> lock(stop_mutex());
  if (--stop_users == 0) dcmStopParsingAfterElement.set(stop_before);
}

}  // namespace lungvol::io

namespace lungvol::io::detail {

void register_dcmtk_codecs() {
  static std::once_flag once;
  std::call_once(once, [] {
    init_dcmtk();
    gdcm::Trace::SetStream(gdcm_sink());
    gdcm::Trace::WarningOff();
    gdcm::Trace::DebugOff();
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

bool read_header(const std::string& path, Header& h, std::string& reason) {
  register_dcmtk_codecs();
  h = Header{};
  h.path = path;
  {
    // A file we cannot open is not "not DICOM": it may be a slice of the series, and skipping
    // it would silently shorten the volume.
    std::ifstream probe(path, std::ios::binary);
    if (!probe) {
      reason = std::string(kUnreadablePrefix) + std::strerror(errno);
      return false;
    }
  }
  if (is_gzip(path)) {
    // A gzipped slice would otherwise be "not DICOM" and the series silently one slice short.
    if (gzip_holds_dicom(path)) {
      reason = std::string(kGzipPrefix) + " (decompress it first, e.g. with gunzip)";
    } else {
      reason = "not DICOM (gzip-compressed data)";
    }
    return false;
  }
  if (!looks_like_dicom(path)) {
    reason = "not DICOM";
    // A DICOM file is at least its 128-byte preamble and "DICM": a shorter file that was meant
    // to be a slice is a truncated copy, and saying so saves a search.
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && size == 0) {
      reason += " (empty file)";
    } else if (!ec && size < 132) {
      reason += " (" + std::to_string(size) +
                " bytes, shorter than a DICOM file's preamble: truncated copy?)";
    }
    return false;
  }
  auto file = std::make_shared<DcmFileFormat>();
  // Nothing after the pixel data matters to lungvol: a file with megabytes of garbage (or
  // zeros) behind it is parsed up to its pixel data and no further.
  const OFCondition cond = [&] {
    StopParsingAfterPixelData stop;
    return file->loadFile(OFFilename(path.c_str()), EXS_Unknown, EGL_noChange, kMaxHeaderValue,
                          ERM_autoDetect);
  }();
  DcmDataset* ds = file->getDataset();
  if (cond.bad()) {
    // Keep what was parsed (often the series UID), so the failure can be reported against
    // the series it belongs to.
    h.parse_error = std::string("corrupt or truncated DICOM (") + cond.text() + ")";
  }
  if (!ds || ds->card() == 0) {
    reason = cond.bad() ? h.parse_error : "empty DICOM dataset";
    return false;
  }
  h.file = file;
  const E_TransferSyntax xfer = ds->getOriginalXfer();
  const DcmXfer x(xfer);
  h.transfer_syntax = x.getXferName();
  h.transfer_syntax_uid = x.getXferID();

  h.sop_class = get_string(*ds, DCM_SOPClassUID);
  if (h.sop_class.empty()) h.sop_class = get_string(*file->getMetaInfo(), DCM_MediaStorageSOPClassUID);
  h.sop_instance = get_string(*ds, DCM_SOPInstanceUID);
  h.modality = get_string(*ds, DCM_Modality);
  h.image_type = get_string(*ds, DCM_ImageType);
  h.series_uid = get_string(*ds, DCM_SeriesInstanceUID);
  h.study_uid = get_string(*ds, DCM_StudyInstanceUID);
  h.study_date = get_string(*ds, DCM_StudyDate);
  h.patient_id = get_string(*ds, DCM_PatientID);
  h.description = get_string(*ds, DCM_SeriesDescription);
  h.kernel = get_string(*ds, DCM_ConvolutionKernel);
  h.manufacturer = get_string(*ds, DCM_Manufacturer);
  h.photometric = get_string(*ds, DCM_PhotometricInterpretation);
  h.frame_of_reference_uid = get_string(*ds, DCM_FrameOfReferenceUID);
  h.rows = get_int(*ds, DCM_Rows, 0);
  h.columns = get_int(*ds, DCM_Columns, 0);
  h.bits_allocated = get_int(*ds, DCM_BitsAllocated, 0);
  h.bits_stored = get_int(*ds, DCM_BitsStored, h.bits_allocated);
  h.high_bit = get_int(*ds, DCM_HighBit, h.bits_stored - 1);
  h.pixel_representation = get_int(*ds, DCM_PixelRepresentation, 0);
  h.samples_per_pixel = get_int(*ds, DCM_SamplesPerPixel, 1);
  h.n_frames_declared = get_int(*ds, DCM_NumberOfFrames, 1);
  h.n_frames = std::max(1, h.n_frames_declared);
  read_pixel_data_layout(*ds, xfer, h);
  if (ds->tagExists(DCM_FloatPixelData)) h.float_pixel_data = "FloatPixelData";
  if (ds->tagExists(DCM_DoubleFloatPixelData)) h.float_pixel_data = "DoubleFloatPixelData";
  if (!h.float_pixel_data.empty()) h.has_pixel_data = true;  // a CT candidate, refused by name
  h.has_padding = get_raw16(*ds, DCM_PixelPaddingValue, h.padding_raw);
  h.has_padding_limit = get_raw16(*ds, DCM_PixelPaddingRangeLimit, h.padding_limit_raw);

  double ps[2];
  if (get_doubles(*ds, DCM_PixelSpacing, ps, 2)) {
    h.pixel_spacing = {ps[0], ps[1]};
    h.has_pixel_spacing = true;
  }
  double t = 0;
  if (get_doubles(*ds, DCM_SliceThickness, &t, 1)) h.slice_thickness = t;

  FrameInfo top;
  top.has_ipp = get_doubles(*ds, DCM_ImagePositionPatient, top.ipp.data(), 3);
  top.has_iop = get_doubles(*ds, DCM_ImageOrientationPatient, top.iop.data(), 6);
  double v = 0;
  if (get_doubles(*ds, DCM_RescaleSlope, &v, 1)) {
    top.slope = v;
    top.has_slope = true;
  }
  if (get_doubles(*ds, DCM_RescaleIntercept, &v, 1)) {
    top.intercept = v;
    top.has_intercept = true;
  }

  DcmItem* shared = sub_item(ds, DCM_SharedFunctionalGroupsSequence);
  DcmSequenceOfItems* per_frame = nullptr;
  ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per_frame);
  h.enhanced = shared != nullptr || per_frame != nullptr;
  h.frames.assign(static_cast<std::size_t>(h.n_frames), top);
  if (h.enhanced) {
    for (std::size_t f = 0; f < h.frames.size(); ++f) {
      read_frame_groups(shared, h, h.frames[f]);
      if (per_frame && f < per_frame->card()) read_frame_groups(per_frame->getItem(f), h, h.frames[f]);
    }
  }
  // A missing, non-finite, zero or negative rescale is not repaired here: discovery refuses the
  // series naming the file (a guessed slope or intercept silently moves every HU).
  if (h.rows > 0 && h.columns > 0 && h.has_pixel_data) h.defect = pixel_module_defect(h);
  return true;
}

}  // namespace lungvol::io::detail
