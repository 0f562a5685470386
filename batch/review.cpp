#include "batch/review.hpp"

#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "batch/exports.hpp"
#include "batch/runner.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch {

const char* decision_state_name(DecisionState s) {
  switch (s) {
    case DecisionState::kNone: return "none";
    case DecisionState::kValid: return "valid";
    case DecisionState::kPending: return "pending";
    case DecisionState::kStale: return "stale";
  }
  return "none";
}

std::string scan_identity(const std::string& image_sha256, const std::string& lungs_mask,
                          const std::string& lesions_mask) {
  if (lungs_mask.empty()) return image_sha256;
  std::string key = image_sha256 + "\nlungs_mask " + sha256_file(lungs_mask);
  if (!lesions_mask.empty()) key += "\nlesions_mask " + sha256_file(lesions_mask);
  return sha256_hex(key);
}

namespace {

DecisionState state_of(const ReviewDecision& d, const ScanRecord& scan) {
  if (d.decision == "excluded") return DecisionState::kValid;
  if (d.decision == "accepted") {
    return scan.status == "ok" && scan.analyzed_at == d.scan_analyzed_at ? DecisionState::kValid
                                                                         : DecisionState::kStale;
  }
  // corrected: valid once the scan was measured with exactly these masks.
  if (scan.status != "ok" || scan.image_sha256.empty()) return DecisionState::kPending;
  try {
    return scan.input_sha256 == scan_identity(scan.image_sha256, d.lungs_mask, d.lesions_mask)
               ? DecisionState::kValid
               : DecisionState::kPending;
  } catch (const std::exception&) {
    return DecisionState::kPending;  // a mask file that can no longer be read
  }
}

}  // namespace

const ScanReview* ReviewStatus::find(const std::string& subject, const std::string& visit) const {
  for (const auto& s : scans) {
    if (s.subject_id == subject && s.visit == visit) return &s;
  }
  return nullptr;
}

std::string ReviewStatus::sentence() const {
  const std::string counts = fmt::format("{} scans ({} accepted, {} corrected, {} excluded)",
                                         scans.size(), accepted, corrected, excluded);
  if (lock && lock_holds) {
    return "locked and fully reviewed: " + counts + "; locked " + lock->locked_at + " by " +
           lock->locked_by;
  }
  std::string s = "NOT locked: ";
  if (lock) s += "the lock of " + lock->locked_at + " no longer holds (the results changed since); ";
  if (without_valid) {
    s += fmt::format("{} of {} scans without a valid decision", without_valid, scans.size());
  } else {
    s += "every scan has a decision (" + counts + "); run `lungvol review OUTDIR --lock`";
  }
  return s;
}

ReviewStatus review_status(Store& store) {
  ReviewStatus st;
  std::map<std::pair<std::string, std::string>, ScanRecord> scans;
  for (auto& s : store.scans()) scans[{s.subject_id, s.visit}] = std::move(s);
  std::map<std::pair<std::string, std::string>, ReviewDecision> decisions;
  for (auto& d : store.reviews()) decisions[{d.subject_id, d.visit}] = std::move(d);
  for (const auto& e : store.manifest()) {
    const auto scan = scans.find({e.subject_id, e.visit});
    if (scan == scans.end()) continue;
    ScanReview r{e.subject_id, e.visit, std::nullopt, DecisionState::kNone};
    if (const auto d = decisions.find({e.subject_id, e.visit}); d != decisions.end()) {
      r.decision = d->second;
      r.state = state_of(d->second, scan->second);
    }
    if (r.state == DecisionState::kValid) {
      if (r.decision->decision == "accepted") ++st.accepted;
      if (r.decision->decision == "corrected") ++st.corrected;
      if (r.decision->decision == "excluded") ++st.excluded;
    } else {
      ++st.without_valid;
    }
    st.scans.push_back(std::move(r));
  }
  st.lock = store.review_lock();
  st.lock_holds = st.lock && st.lock->state == store.results_state() && st.fully_reviewed();
  return st;
}

std::string default_reader() {
  for (const char* var : {"LUNGVOL_READER", "USER", "LOGNAME"}) {
    if (const char* v = std::getenv(var); v && *v) return v;
  }
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_name) return pw->pw_name;
  return "uid " + std::to_string(::getuid());
}

namespace {

std::string store_path_or_throw(const std::string& outdir) {
  const fs::path db = fs::path(outdir) / "results.sqlite";
  std::error_code ec;
  if (!fs::is_regular_file(db, ec)) {
    throw Error(ExitCode::kInput, outdir + " has no results.sqlite: not a `lungvol batch` output "
                                           "folder (run `lungvol batch MANIFEST -o " + outdir +
                                           "` first)");
  }
  return db.string();
}

std::string absolute_existing(const std::string& path, const char* what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error(ExitCode::kInput, std::string(what) + " '" + path + "' does not exist or is not a file");
  }
  return fs::absolute(path).lexically_normal().string();
}

// After a decision or lock: the CSV and the recorded state follow the store.
void refresh_after_review(Store& store, const std::string& outdir) {
  write_visits_wide_csv(store, (fs::path(outdir) / "visits_wide.csv").string());
  store.record_results_state();
}

}  // namespace

ReviewDecision record_review(const ReviewRequest& q) {
  const std::string db = store_path_or_throw(q.outdir);
  ReviewDecision d;
  d.subject_id = q.subject;
  d.visit = q.visit;
  d.decision = q.decision;
  d.reason = q.reason;
  d.reader = q.reader.empty() ? default_reader() : q.reader;
  if (d.decision == "excluded" && d.reason.empty()) {
    throw Error(ExitCode::kUsage, "review: --exclude needs a reason (e.g. --exclude \"motion "
                                  "artefacts, lungs not assessable\")");
  }
  if (d.decision == "corrected") {
    if (q.lungs_mask.empty()) throw Error(ExitCode::kUsage, "review: a correction needs --lungs-mask FILE");
    d.lungs_mask = absolute_existing(q.lungs_mask, "--lungs-mask");
    if (!q.lesions_mask.empty()) d.lesions_mask = absolute_existing(q.lesions_mask, "--lesions-mask");
  } else if (!q.lesions_mask.empty()) {
    throw Error(ExitCode::kUsage, "review: --lesions-mask needs --lungs-mask (lesions are measured "
                                  "inside lungs that a reader has seen)");
  }
  DirectoryLock lock((fs::path(q.outdir) / ".lock").string());
  Store store(db);
  if (const auto l = store.review_lock()) {
    throw Error(ExitCode::kUsage, "review: the batch was locked " + l->locked_at + " by " +
                                      l->locked_by + "; unlock it first with `lungvol review " +
                                      q.outdir + " --unlock` (the unlock is recorded)");
  }
  const auto manifest = store.manifest();
  const bool listed = std::any_of(manifest.begin(), manifest.end(), [&](const ManifestEntry& e) {
    return e.subject_id == q.subject && e.visit == q.visit;
  });
  const auto scan = store.find_scan(q.subject, q.visit);
  if (!listed || !scan) {
    std::string known;
    std::size_t n = 0;
    for (const auto& e : manifest) {
      if (e.subject_id == q.subject && n++ < 10) known += (known.empty() ? "" : ", ") + e.visit;
    }
    throw Error(ExitCode::kUsage,
                "review: " + q.subject + " " + q.visit + " is not a scan of this batch" +
                    (known.empty() ? " (no such subject in its manifest)"
                                   : " (" + q.subject + " has visits " + known + ")") +
                    (listed && !scan ? "; it was never analyzed: run the batch first" : ""));
  }
  if (d.decision == "accepted" && scan->status != "ok") {
    throw Error(ExitCode::kUsage, "review: " + q.subject + " " + q.visit +
                                      " failed (" + scan->error + "): it can be excluded or "
                                      "corrected with masks, not accepted");
  }
  d.decided_at = utc_timestamp();
  d.scan_input_sha256 = scan->input_sha256;
  d.scan_analyzed_at = scan->analyzed_at;
  store.save_review(d);
  refresh_after_review(store, q.outdir);
  return d;
}

ReviewLock lock_review(const std::string& outdir, const std::string& reader) {
  const std::string db = store_path_or_throw(outdir);
  DirectoryLock lock((fs::path(outdir) / ".lock").string());
  Store store(db);
  const ReviewStatus st = review_status(store);
  if (st.scans.empty()) throw Error(ExitCode::kUsage, "review: the batch holds no scan to lock");
  if (st.without_valid) {
    std::string list;
    std::size_t n = 0;
    for (const auto& s : st.scans) {
      if (s.state == DecisionState::kValid) continue;
      if (n++ < 12) {
        list += "\n  " + s.subject_id + " " + s.visit + ": " +
                (s.state == DecisionState::kNone ? "no decision"
                 : s.state == DecisionState::kPending
                     ? "corrected, not yet re-measured with its masks (run `lungvol batch` again)"
                     : "accepted before the scan was analyzed again: review it again");
      }
    }
    if (n > 12) list += fmt::format("\n  ... and {} more", n - 12);
    throw Error(ExitCode::kUsage,
                fmt::format("review: cannot lock: {} of {} scans have no valid decision:{}",
                            st.without_valid, st.scans.size(), list));
  }
  ReviewLock l{utc_timestamp(), reader.empty() ? default_reader() : reader, ""};
  refresh_after_review(store, outdir);
  l.state = store.results_state();
  store.set_review_lock(l);
  return l;
}

void unlock_review(const std::string& outdir) {
  const std::string db = store_path_or_throw(outdir);
  DirectoryLock lock((fs::path(outdir) / ".lock").string());
  Store store(db);
  store.set_review_lock(std::nullopt);
}

std::size_t apply_review_masks(Store& store, Manifest& manifest) {
  std::map<std::pair<std::string, std::string>, ReviewDecision> corrected;
  for (auto& d : store.reviews()) {
    if (d.decision == "corrected") corrected[{d.subject_id, d.visit}] = std::move(d);
  }
  std::size_t n = 0;
  for (auto& e : manifest.entries) {
    const auto it = corrected.find({e.subject_id, e.visit});
    if (it == corrected.end()) continue;
    if (e.lungs_mask != it->second.lungs_mask || e.lesions_mask != it->second.lesions_mask) {
      log::info("batch: {} {}: measured with the reader's masks ({} {})", e.subject_id, e.visit,
                it->second.reader, it->second.decided_at);
      e.lungs_mask = it->second.lungs_mask;
      e.lesions_mask = it->second.lesions_mask;
      ++n;
    }
  }
  return n;
}

}  // namespace lungvol::batch
