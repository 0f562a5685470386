#pragma once
// One subject's follow-ups, from the per-scan outputs of `lungvol analyze` / `batch` to the
// registration outputs (docs/outputs.md, "Registration"): every follow-up registered to the
// baseline, its lesion change map, inspiration level and volume-adjusted densitometry, and the
// consistency of the lung masks across the visits. Used by the local batch, the Slurm executor's
// per-subject task and `lungvol register`. Touches no results store.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "registration/consistency.hpp"
#include "registration/register.hpp"

namespace lungvol::registration {

inline constexpr const char* kRecordSchema = "lungvol.registration/1";

// The stored densitometry of one region of a scan (from its measurements).
struct RegionDensity {
  double volume_ml = 0, mean_hu = 0, p15_hu = 0;
};

// One analyzed scan: where its CT and label maps are, and what the store holds about it.
struct VisitScan {
  std::string visit;
  std::string input_path, series_uid;  // the CT (DICOM folder / file or image file)
  std::string input_sha256;            // the scan's stored identity (masks included)
  std::string protocol_sha256, software_version;
  std::string scan_dir;                // lungs.nii.gz and lesions.nii.gz
  double lesion_pct = 0;               // `lungs` region
  std::map<std::string, RegionDensity> regions;  // lungs, right, left
};

struct FollowupSettings {
  RegistrationParams params;
  ConsistencyParams consistency;
  double inspiration_tolerance = 0.10;
  bool write_qc_images = true;
};

// The identity of a follow-up's registration: SHA-256 over the record schema, the parameters'
// text, both scans' identities (input, protocol and software that made their label maps) and this
// software's version. A stored registration with the same key is not redone.
std::string registration_key(const VisitScan& baseline, const VisitScan& followup,
                             const FollowupSettings& settings);
// The identity of a subject's cross-visit results (best-aerated visit, mask consistency): the
// baseline's identity and every follow-up's registration key, in visit order.
std::string subject_key(const VisitScan& baseline, const std::vector<VisitScan>& followups,
                        const FollowupSettings& settings);

struct Measurement {
  std::string region, metric;
  double value = 0;
  std::string unit;
};

struct FollowupOutcome {
  std::string visit;
  std::string status;  // ok | failed
  std::string error;
  int exit_code = 0;
  std::string key, registered_at, outdir;
  double seconds = 0;
  bool inspiration_flagged = false, consistency_flagged = false;
  nlohmann::json record;                  // registration.json
  std::vector<Measurement> measurements;  // per region: change_*; lungs: inspiration, etc.
};

struct ConsistencyRow {
  std::string target_visit, source_visit;
  std::string source_role;  // baseline | best_aerated
  MaskAgreement agreement;
};

struct SubjectOutcome {
  std::string subject_id, subject_key, best_aerated_visit;
  std::string status = "ok", error;  // of the cross-visit part
  std::vector<FollowupOutcome> followups;  // the follow-ups registered now
  std::vector<ConsistencyRow> consistency;  // every visit, recomputed
};

struct SubjectJob {
  std::string subject_id;
  VisitScan baseline;
  std::vector<VisitScan> followups;     // every analyzed follow-up, schedule order
  std::vector<std::string> to_register;  // the follow-ups to (re)register; the others are read
                                         // from their folders (must exist)
  std::string outdir;                    // OUTDIR/registrations/<subject>
  FollowupSettings settings;
  // One follow-up whose files go into `outdir` itself instead of outdir/<visit>/ (lungvol
  // register).
  bool flat = false;
};

// The visit as `lungvol analyze` left it in `dir` (metrics.json: input, hashes, densitometry;
// lungs.nii.gz, lesions.nii.gz). Error(kInput) when it is not an analyze output.
VisitScan visit_scan_from_analysis(const std::string& dir, const std::string& visit);

// Registers the follow-ups asked for (each into outdir/<visit>/, swapped in whole; a failure is
// recorded in its outcome, not thrown) and recomputes the subject's consistency rows. Throws only
// Error(kInterrupted) (Ctrl-C between follow-ups).
SubjectOutcome run_subject(const SubjectJob& job);

// Names the registration writes into outdir/<visit>/ (an existing folder holding only these may
// be replaced).
bool registration_file_is_replaceable(const std::string& entry_name);

}  // namespace lungvol::registration
