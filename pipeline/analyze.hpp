#pragma once
// One scan from input to outputs: read, segment lungs and lesions, measure, write. The apps
// `analyze` and `batch` are thin wrappers around this.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/orientation.hpp"
#include "core/protocol.hpp"
#include "densitometry/calibration.hpp"
#include "densitometry/density.hpp"
#include "io/series.hpp"
#include "mesh/outputs.hpp"
#include "pipeline/given_masks.hpp"
#include "segmentation/lesions.hpp"
#include "segmentation/lungs.hpp"
#include "volumetry/coverage.hpp"
#include "volumetry/volumes.hpp"

namespace lungvol::pipeline {

struct RegionResult {
  std::string name;
  vol::RegionVolumes volumes;
  dens::DensityMetrics density;
  vol::RegionHistograms histograms;
};

struct Timings {
  double read_s = 0, lungs_s = 0, lesions_s = 0, measure_s = 0, write_s = 0, total_s = 0;
};

struct Analysis {
  // The input, on the canonical axial grid once canonicalize_input() has run (analyze() and
  // segment_and_measure() call it): index axes right->left, anterior->posterior, feet->head.
  io::LoadedCt input;
  // The input's own grid as read (the series' slice order). Label maps, DICOM SEG/SR and the
  // recorded size / spacing use it; the analysis runs on the canonical grid.
  Geometry original_geometry;
  Orientation orientation;  // of original_geometry; orientation.map leads to the canonical grid
  bool canonical = false;   // input (and given masks) are on the canonical grid
  vol::Coverage coverage;   // lungs cut by the volume's boundary (volumetry/coverage.hpp)
  Protocol protocol;
  seg::LungSegmentation lungs;
  seg::LesionSegmentation lesions;
  std::vector<RegionResult> regions;  // vol::region_names() order
  bool calibrate_air = false;         // --calibrate air: correct HU before measuring
  std::optional<GivenMask> given_lungs;    // used instead of segmenting the lungs
  std::optional<GivenMask> given_lesions;  // used instead of segmenting the lesions
  std::optional<LesionsMaskUse> lesions_mask_use;  // what became of the given lesions mask
  // A one-region lungs mask: right / left unknown (measured as lungs only).
  bool sides_unknown() const { return given_lungs && given_lungs->one_region; }
  dens::CalibrationCheck calibration;
  dens::AirCorrection air_correction;
  Timings timings;
  std::vector<std::string> warnings;  // reading + segmentation
  std::string analyzed_at;            // UTC ISO 8601
  std::string protocol_toml;          // the protocol file's text (its sha256 = protocol.sha256)
  std::optional<mesh::MeshOutputs> meshes;  // with --meshes: surfaces and the 3D render
  const RegionResult& region(const std::string& name) const;
};

// Brings a.input.image (and given masks) from their own axis order to the canonical axial grid by
// a permutation and flips of the axes (no interpolation), keeping the original geometry for
// the outputs. An oblique grid is refused (Error kDicom naming its orientation). Idempotent.
void canonicalize_input(Analysis& a);
// Segments and measures an image already in memory (fills lungs, lesions, regions, timings).
void segment_and_measure(Analysis& a);
// Measures from histograms only (threshold sweeps, re-measurement with another protocol).
std::vector<RegionResult> measure_regions(std::vector<vol::RegionHistograms> histograms,
                                          const Protocol& protocol, double voxel_ml);

struct AnalyzeOptions {
  std::string input;
  std::string outdir;
  std::string protocol = kDefaultProtocol;
  io::ReadOptions read;
  bool write_label_maps = true;
  bool write_qc_images = true;
  bool write_dicom = true;  // seg.dcm + sr.dcm, when the input is a DICOM series
  bool calibrate_air = false;
  bool write_meshes = false;  // meshes/*.vtp|stl and qc_3d.png (mesh/outputs.hpp)
  std::string lungs_mask;    // given masks (file paths), used instead of segmenting
  std::string lesions_mask;
};

// With an output folder, the outputs are written into a temporary folder beside it and swapped
// in whole at the end (core/fs.hpp StagedDirectory): an existing folder must be empty or hold
// only an earlier lungvol output (output_file_is_replaceable), and is then replaced entirely;
// a failure or an interruption (core/cancel.hpp, checked between the stages) leaves it as it
// was and no new folder behind.
Analysis analyze(const AnalyzeOptions& options);

// Names lungvol analyze writes into its output folder (and its temporary files): an existing
// folder holding only these may be replaced.
bool output_file_is_replaceable(const std::string& entry_name);

// The text of the protocol's file, checked against the sha256 it was loaded with
// (Error(kProtocol) when the file changed since).
std::string protocol_text(const Protocol& protocol);

// metrics.json (schema lungvol.metrics/1; see docs/outputs.md).
nlohmann::json metrics_json(const Analysis& a);
// Writes metrics.json, measurements.csv, histograms.csv, lungs.nii.gz, lesions.nii.gz, the QC
// PNGs, protocol.toml (the protocol's full text) and (for DICOM input) seg.dcm and sr.dcm into
// outdir; every file atomically.
void write_outputs(Analysis& a, const AnalyzeOptions& options);

}  // namespace lungvol::pipeline
