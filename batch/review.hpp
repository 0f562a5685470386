#pragma once
// The reader's decision on every scan of a batch (docs/batch.md, "Review"): accepted,
// corrected (with the mask files to re-measure with) or excluded (with a reason), stored in
// results.sqlite with who and when; a batch can be locked once every scan has a valid decision.
// `batch` re-measures corrected scans with their masks, `endpoint` treats excluded scans as
// missing, `endpoint`, `export` and `report` say whether the batch is locked.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "batch/store.hpp"

namespace lungvol::batch {

// Whether a scan's decision still applies to what the store holds.
enum class DecisionState {
  kNone,     // no decision
  kValid,    // applies to the stored scan
  kPending,  // corrected: the scan has not been re-measured with these masks yet (run batch)
  kStale,    // accepted: the scan was analyzed again since (a new software version, input)
};
const char* decision_state_name(DecisionState s);  // none | valid | pending | stale

struct ScanReview {
  std::string subject_id, visit;
  std::optional<ReviewDecision> decision;
  DecisionState state = DecisionState::kNone;
};

struct ReviewStatus {
  std::vector<ScanReview> scans;  // manifest order; only subject x visits with a scans row
  std::size_t accepted = 0, corrected = 0, excluded = 0, without_valid = 0;
  std::optional<ReviewLock> lock;
  bool lock_holds = false;  // locked, and the results are still those that were locked
  bool fully_reviewed() const { return !scans.empty() && without_valid == 0; }
  // "locked and fully reviewed: 24 scans (20 accepted, 2 corrected, 2 excluded); locked
  // 2026-12-03T10:00:00Z by reader" or "NOT locked: 3 of 24 scans without a valid decision".
  std::string sentence() const;
  const ScanReview* find(const std::string& subject, const std::string& visit) const;
};

ReviewStatus review_status(Store& store);

// The identity a scan measured with reviewer masks gets (scans.input_sha256): the image hash
// alone without masks, else SHA-256 of it and the masks' hashes.
std::string scan_identity(const std::string& image_sha256, const std::string& lungs_mask,
                          const std::string& lesions_mask);

struct ReviewRequest {
  std::string outdir, subject, visit;
  std::string decision;  // accepted | excluded | corrected
  std::string reason, lungs_mask, lesions_mask, reader;
};
// Validates (the scan is in the manifest and stored; excluded needs a reason; corrected needs an
// existing lungs mask; accepted needs an analyzed scan; the batch is not locked), takes the
// folder's lock (no batch may run meanwhile), stores the decision, rewrites visits_wide.csv and
// records the results state. Error(kUsage) for a bad request, kInput for a missing folder or
// file, kOutput when the folder is in use.
ReviewDecision record_review(const ReviewRequest& request);
// Locks the batch: Error(kUsage) listing the scans without a valid decision.
ReviewLock lock_review(const std::string& outdir, const std::string& reader);
void unlock_review(const std::string& outdir);

// Manifest masks replaced by the corrected decisions' masks (the reader's latest word wins).
// Returns the number of entries changed.
std::size_t apply_review_masks(Store& store, Manifest& manifest);

// The login name (USER, LOGNAME, else the uid).
std::string default_reader();

}  // namespace lungvol::batch
