#pragma once
// The dense pathology stress suite of issue #15 (docs/validation.md, "Dense pathology stress
// suite"): families of lesions (tests/support/lesion_families.hpp) inserted into real scans,
// segmented and measured by the pipeline as it is (pipeline::segment_and_measure, nothing of
// its internals), and compared with the inserted truth. Shared by the data test
// (tests/unit/families) and the command-line tool (bench/families.cpp).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/protocol.hpp"
#include "tests/support/lesion_families.hpp"

namespace lungvol::test::stress {

// The targets, in one place. A lesion passes when at least min_inside of its truth
// lies in the lung mask and its measured ground-glass and solid volumes are each within
// max(class_rel x inserted, class_abs_ml) of the inserted (+-5 %, +-0.2 mL under 4 mL).
struct Targets {
  double min_inside = 0.95;
  double class_rel = 0.05;
  double class_abs_ml = 0.2;
  double clean_volume_rel = 0.01;  // clean scans: lung volume vs the stored reference
  double cip_dice = 0.98;          // clean CIP vs its reference mask
  double severity_rel = 0.05;      // phantom severity series: proportions vs truth
};

// One scan with its clean run: what the families are inserted into.
struct ScanCase {
  std::string name;         // popi, cip, popi_1mm
  std::string description;  // where it comes from, grid
  CtImage ct;
  LabelImage lungs, lesions;  // the clean run's label maps
  double lung_ml = 0, ggo_ml = 0, solid_ml = 0;
  double clean_seconds = 0;  // the clean run's segment_and_measure (0 when from the cache)
  bool from_cache = false;
  ScanAnatomy anatomy;
};

// The scans of the suite: "popi" (POPI 4D-CT phase 00, 0.98 x 0.98 x 2 mm), "cip" (CIP ct-64,
// 4.17 x 4.17 x 3.99 mm), "popi_1mm" (POPI resampled to 1 mm slices: linear interpolation
// between neighbouring slices).
std::vector<std::string> case_names();
// The seed the data test uses on each case (1, 2, 3: lobar consolidation alternates sides).
std::uint64_t case_seed(const std::string& name);
// The data path (relative to <shared>/data) a case needs.
std::string case_data(const std::string& name);
CtImage load_scan(const std::string& name);

// Loads the scan and its clean run. The clean run's label maps and volumes are kept in
// cache_dir (default: $LUNGVOL_FAMILIES_CACHE or <build>/stress_suite/cache), keyed by the
// running executable (path, size, time), the protocol's sha256 and the CT's voxels: every test
// process of one build reuses one clean segmentation per scan, and a rebuilt segmentation is
// never mistaken for the old one.
ScanCase load_case(const std::string& name, const Protocol& protocol, bool use_cache = true);

struct LesionResult {
  std::string case_name;
  FamilyLesion lesion;  // voxel lists cleared after measuring
  double inside = 0;    // fraction of the truth inside the lung mask (right or left lung)
  double measured_ggo_ml = 0, measured_solid_ml = 0;  // increase in the changed voxels + 3 mm
  bool inside_ok = false, ggo_ok = false, solid_ok = false;
  bool ok() const { return inside_ok && ggo_ok && solid_ok; }
};

struct CaseRun {
  std::string case_name;
  Family family{};
  std::uint64_t seed = 0;
  std::vector<LesionResult> lesions;
  std::vector<std::string> notes;  // lesions not placed
  double lung_ml_clean = 0, lung_ml_after = 0;
  double inserted_ggo_ml = 0, inserted_solid_ml = 0;  // all lesions of the case
  double ggo_increase_ml = 0, solid_increase_ml = 0;  // whole lungs, after - clean
  double insert_seconds = 0, segment_seconds = 0;
  // The scan's dense-tissue review flag (segmentation.dense: left out or admitted beyond the
  // protocol's threshold): a lesion missed in a flagged scan is found by the reviewer; one
  // missed in an unflagged scan is a silent error.
  bool dense_flagged = false;
  // Kept for the QC picture when asked: the CT with the lesions and the lung map found.
  std::optional<CtImage> ct_after;
  std::optional<LabelImage> lungs_after;
  std::vector<FamilyLesion> lesions_with_voxels;  // with truth lists, only when keep_images
};

double class_tolerance_ml(double inserted_ml, const Targets& t);

// Inserts `count` lesions of `family` with `seed` into the case, segments and measures.
CaseRun run_family(const ScanCase& scan, Family family, std::uint64_t seed, int count,
                   const Protocol& protocol, const Targets& targets, bool keep_images = false);

// Lesions per case for each family: a few per case, one run per case and seed, so that one
// family stays within about a minute on two cores.
int default_count(Family family);

struct FamilySummary {
  std::string family;
  std::size_t lesions = 0, cases = 0;
  std::size_t inside_ok = 0, ggo_ok = 0, solid_ok = 0, all_ok = 0;
  std::size_t flagged_scans = 0;
  std::size_t silent_misses = 0;  // lesions under the inside target in an unflagged scan
  double worst_inside = 1, median_inside = 1;
  std::string worst_lesion;  // description of the lesion with the worst inside fraction
  double worst_ggo_err_ml = 0, worst_solid_err_ml = 0;  // largest |measured - inserted|
  double worst_ggo_rel = 0, worst_solid_rel = 0;        // the same relative to inserted
  double max_lung_change_pct = 0;  // largest |lung volume after - clean| / clean
  double seconds = 0;
};
FamilySummary summarise(const std::string& family, const std::vector<CaseRun>& runs);

// Phantom severity series: lungvol phantom --lesion-scale s, measured vs truth.json.
struct SeverityPoint {
  double scale = 0;
  double truth_lesion_pct = 0, truth_ggo_pct = 0, truth_solid_pct = 0, truth_lung_ml = 0;
  double lesion_pct = 0, ggo_pct = 0, solid_pct = 0, lung_ml = 0;
  double lesion_inside = 0;  // fraction of the truth lesion voxels inside the lung mask
  double seconds = 0;
  double rel(double measured, double truth) const {
    return truth != 0 ? (measured - truth) / truth : 0.0;
  }
  bool ok(const Targets& t) const;
};
SeverityPoint run_severity(double scale, const Protocol& protocol, std::uint64_t seed = 1);
std::vector<double> severity_scales();  // 0.5, 1, 1.5, 2, 2.5, 3

// Output: one row per lesion; one row per family summary; Markdown tables.
void write_lesion_csv(const std::string& path, const std::vector<CaseRun>& runs);
void write_summary_csv(const std::string& path, const std::vector<FamilySummary>& summaries);
void write_severity_csv(const std::string& path, const std::vector<SeverityPoint>& points);
std::string markdown_summary(const std::vector<FamilySummary>& summaries, const Targets& t);
std::string markdown_severity(const std::vector<SeverityPoint>& points, const Targets& t);

// Where the suite writes (created): $LUNGVOL_FAMILIES_OUT or <build>/stress_suite.
std::string output_dir();

// One QC picture: the axial slice `k` of the CT with the lesions, in a lung window, the lung
// mask's contour (right green, left azure), and the lesion's truth filled orange where the
// mask holds it and red where it does not. Upscaled so the longer side is at least 512 px.
void write_truth_qc_png(const std::string& path, const CtImage& ct, const LabelImage& lungs,
                        const std::vector<std::size_t>& truth, std::size_t k);

}  // namespace lungvol::test::stress
