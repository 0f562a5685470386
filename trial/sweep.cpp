#include "trial/sweep.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace lungvol::trial {

double count_in(const std::vector<std::uint64_t>& hist, int hist_min_hu, double lo, double hi) {
  if (hist.empty() || !(hi > lo)) return 0;
  // Integer HU v is counted when lo <= v < hi, i.e. ceil(lo) <= v <= ceil(hi) - 1.
  const double first = std::max(std::ceil(lo), static_cast<double>(hist_min_hu));
  const double last = std::min(std::ceil(hi) - 1,
                               static_cast<double>(hist_min_hu) + static_cast<double>(hist.size()) - 1);
  if (last < first) return 0;
  const auto b = static_cast<std::size_t>(first - hist_min_hu);
  const auto e = static_cast<std::size_t>(last - hist_min_hu) + 1;
  std::uint64_t n = 0;
  for (std::size_t i = b; i < e; ++i) n += hist[i];
  return static_cast<double>(n);
}

double total_count(const std::vector<std::uint64_t>& hist) {
  return static_cast<double>(std::accumulate(hist.begin(), hist.end(), std::uint64_t{0}));
}

LesionProportions proportions_at(const std::vector<std::uint64_t>& lung_hist,
                                 const std::vector<std::uint64_t>& candidate_hist,
                                 int hist_min_hu, double low_hu, double split_hu, double high_hu) {
  LesionProportions p;
  const double lung = total_count(lung_hist);
  if (lung <= 0) return p;
  p.lesion_pct = count_in(candidate_hist, hist_min_hu, low_hu, high_hu) / lung * 100.0;
  p.ggo_pct = count_in(candidate_hist, hist_min_hu, low_hu, split_hu) / lung * 100.0;
  p.solid_pct = count_in(candidate_hist, hist_min_hu, split_hu, high_hu) / lung * 100.0;
  return p;
}

LesionProportions proportions_at(const HuHistogram& lung, const HuHistogram& candidates,
                                 double low_hu, double split_hu, double high_hu) {
  return proportions_at(lung.counts, candidates.counts, HuHistogram::kMinHu, low_hu, split_hu,
                        high_hu);
}

VisitTable visit_table_at(const std::vector<ScanHistograms>& scans, double low_hu,
                          double split_hu, double high_hu) {
  VisitTable t;
  t.source = "<sweep>";
  t.metrics = {"lesion_pct", "ggo_pct", "solid_pct"};
  t.rows.reserve(scans.size());
  for (const auto& s : scans) {
    VisitRow r;
    r.subject_id = s.subject_id;
    r.arm = s.arm;
    r.visit = s.visit;
    r.visit_day = s.visit_day;
    r.in_window = s.in_window;
    r.failed = s.failed;
    const LesionProportions p =
        s.failed ? LesionProportions{}
                 : proportions_at(s.lung, s.candidates, s.hist_min_hu, low_hu, split_hu, high_hu);
    r.values = {p.lesion_pct, p.ggo_pct, p.solid_pct};
    t.rows.push_back(std::move(r));
  }
  return t;
}

EndpointResult sweep_point(const std::vector<ScanHistograms>& scans, double low_hu,
                           double split_hu, double high_hu, const VisitSchedule& schedule,
                           const EndpointOptions& options) {
  return run_endpoints(visit_table_at(scans, low_hu, split_hu, high_hu), schedule, options);
}

}  // namespace lungvol::trial
