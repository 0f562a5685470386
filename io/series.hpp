#pragma once
// DICOM discovery and CT series assembly (DCMTK; GDCM through ITK only to decode JPEG 2000).
#include <array>
#include <string>
#include <vector>

#include "core/image.hpp"

namespace lungvol::io {

struct SeriesInfo {
  std::string series_instance_uid;
  std::string study_instance_uid;
  std::string study_date;  // YYYYMMDD as in the header ("" when absent)
  std::string patient_id;
  std::string description;
  std::string modality;
  std::string kernel;        // ConvolutionKernel
  std::string image_type;    // ImageType, backslash-separated
  std::string transfer_syntax;
  std::string manufacturer;
  int rows = 0;
  int columns = 0;
  std::size_t n_files = 0;
  std::size_t n_slices = 0;  // frames for multi-frame objects
  std::array<double, 3> spacing_mm{0, 0, 0};  // column, row, slice (slice from positions)
  double slice_thickness_mm = 0;              // header value, informational only
  bool axial = false;
  bool original = false;  // ImageType ORIGINAL
  bool dicom = false;     // read from DICOM (false for NIfTI / NRRD / MHA inputs)
  std::string orientation;  // e.g. "axial (index axes L, P, S)", "coronal (...)", "oblique (...)"
  std::vector<std::string> problems;  // why it cannot be assembled safely (refused)
  std::vector<std::string> warnings;  // assembled, but something the reader should know
  std::vector<std::string> files;     // in geometric order
  bool usable() const { return problems.empty(); }
};

struct SkippedFile {
  std::string path;
  std::string reason;  // e.g. "not DICOM", "localizer", "modality SR", "secondary capture"
};

struct Discovery {
  std::vector<SeriesInfo> series;  // CT volume candidates (possibly with problems)
  std::vector<SkippedFile> skipped;
};

// DCMTK's process-wide settings, once: its own log output off (lungvol's messages carry the
// conditions), VR UN restored from the dictionary. Every entry point that parses DICOM calls
// it; main() calls it first.
void init_dcmtk();

// While one exists, DCMTK stops parsing a file after its pixel data: whatever follows (a 200 MB
// zero tail, trailing garbage) is never read. Hold one around loadFile calls of CT files.
struct StopParsingAfterPixelData {
  StopParsingAfterPixelData();
  ~StopParsingAfterPixelData();
  StopParsingAfterPixelData(const StopParsingAfterPixelData&) = delete;
  StopParsingAfterPixelData& operator=(const StopParsingAfterPixelData&) = delete;
};

// Recursively finds DICOM files under `path` (a folder or one file), reading headers only.
Discovery discover_dicom(const std::string& path);

struct ReadOptions {
  std::string series_uid;           // choose this series; "" = documented automatic choice
  bool resample_nonuniform = false;  // opt-in: resample gaps / uneven spacing, with a warning
};

struct LoadedCt {
  CtImage image;       // HU, LPS geometry
  SeriesInfo series;   // for NIfTI/NRRD/MHA inputs: description/uid empty, modality "CT?"
  std::string source_path;
  std::string sha256;  // over the input file(s)
  std::string selection_reason;  // why this series was chosen
  std::vector<std::string> warnings;
};

// Reads a CT from a DICOM folder/file or an image file (.nii, .nii.gz, .nrrd, .nhdr, .mha,
// .mhd). Throws Error(kInput) for missing/unreadable paths, Error(kDicom) for unsafe series.
LoadedCt load_ct(const std::string& path, const ReadOptions& options = {});

// The automatic choice among several CT volume series; explains itself in `reason`.
const SeriesInfo& choose_series(const Discovery& d, const std::string& uid, std::string* reason);

}  // namespace lungvol::io
