#pragma once
// The QC flags and QC score of every manifest subject x visit of a batch (docs/outputs.md, "QC
// flags and the QC score"): each scan's own flags (scans.flags, from its metrics.json), the
// flags that need the subject's other visits (lung volume jump beyond what inspiration
// explains, low baseline lesion burden, identity), and failed scans with their reason and exit
// code. Computed from the store alone, the same way by `batch` (stored in qc_flags and
// visits_wide.csv), `report` and `export`.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "batch/store.hpp"
#include "pipeline/flags.hpp"

namespace lungvol::batch {

struct QcOptions {
  // lung_volume_jump: |lung volume change| between consecutive measured visits above this, in
  // %, while the lung's tissue mass (mass_g) changed by more than inspiration_mass_pct %:
  // a deeper or shallower breath changes the air in the lungs, not their tissue, so a volume
  // change with a stable mass is inspiration, and one with a changed mass is not explained by it.
  double lung_change_pct = 10;
  double inspiration_mass_pct = 10;
  double min_baseline_lesion_pct = 0.5;  // low_baseline_lesion below this lesion_pct at baseline
};

struct ScanQc {
  std::vector<pipeline::QcFlag> flags;  // flag table order
  int score = 0;                        // pipeline::qc_score(flags)
};

using QcKey = std::pair<std::string, std::string>;  // subject_id, visit

// Every manifest subject x visit that has a scans row. `visit_order`: the schedule's visit
// names, baseline first (the order "previous visit" refers to).
std::map<QcKey, ScanQc> compute_qc(Store& store, const std::vector<std::string>& visit_order,
                                   const QcOptions& options = {});

// The scan's own flags: scans.flags, or, for a row stored before schema 3, computed from the
// scan folder's metrics.json (none when it is absent).
std::vector<pipeline::QcFlag> own_flags(const ScanRecord& scan);

// Recomputes compute_qc() with the default options and stores it in qc_flags.
void update_qc_flags(Store& store, const std::vector<std::string>& visit_order);

// The visit names of a schedule, baseline first.
std::vector<std::string> visit_order(const trial::VisitSchedule& schedule);
// ... of the schedule the store's latest run used (the default schedule without one).
std::vector<std::string> visit_order(Store& store);

}  // namespace lungvol::batch
