#pragma once
// Threshold sweeps without re-reading images: per scan, the HU histograms (1-HU bins) of
// the lung voxels and of the lesion-candidate voxels give the ground-glass / solid / lesion
// proportions for any (low, split, high) thresholds; the endpoint analysis then runs in
// memory. The candidate histogram must hold every voxel that could be a lesion at the
// lowest `low` swept (the lead's pipeline decides how candidates are collected).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/histogram.hpp"
#include "trial/endpoint.hpp"

namespace lungvol::trial {

// Voxels with HU in [lo, hi). Bin i holds the voxels of integer HU value hist_min_hu + i, so
// the count covers the integer values ceil(lo) .. ceil(hi) - 1; values outside the
// histogram's range count as 0.
double count_in(const std::vector<std::uint64_t>& hist, int hist_min_hu, double lo, double hi);
double total_count(const std::vector<std::uint64_t>& hist);

struct LesionProportions {
  std::optional<double> lesion_pct, ggo_pct, solid_pct;  // empty when the lung is empty
};

// lesion = candidates in [low, high), ground glass = [low, split), solid = [split, high),
// each as % of all lung voxels.
LesionProportions proportions_at(const std::vector<std::uint64_t>& lung_hist,
                                 const std::vector<std::uint64_t>& candidate_hist,
                                 int hist_min_hu, double low_hu, double split_hu, double high_hu);

// Same on the pipeline's HuHistogram (core/histogram.hpp).
LesionProportions proportions_at(const HuHistogram& lung, const HuHistogram& candidates,
                                 double low_hu, double split_hu, double high_hu);

struct ScanHistograms {
  std::string subject_id, arm, visit;
  std::optional<double> visit_day;
  std::optional<bool> in_window;
  bool failed = false;
  int hist_min_hu = -1024;
  std::vector<std::uint64_t> lung, candidates;
};

// The visit table (metrics lesion_pct, ggo_pct, solid_pct) at the given thresholds.
VisitTable visit_table_at(const std::vector<ScanHistograms>& scans, double low_hu,
                          double split_hu, double high_hu);

// One sweep point: proportions at the thresholds, then the full endpoint comparison.
EndpointResult sweep_point(const std::vector<ScanHistograms>& scans, double low_hu,
                           double split_hu, double high_hu, const VisitSchedule& schedule,
                           const EndpointOptions& options);

}  // namespace lungvol::trial
