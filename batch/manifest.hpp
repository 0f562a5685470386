#pragma once
// The batch manifest: one row per scan (subject x visit) with the path of its CT, and the
// study-day arithmetic that places each scan against the visit schedule's windows.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trial/endpoint.hpp"

namespace lungvol::batch {

struct ManifestEntry {
  std::size_t line = 0;  // physical line of the record in the manifest (header = 1)
  std::string subject_id, arm, visit;
  std::string path;       // as written
  std::string full_path;  // resolved: relative paths against the manifest's folder
  std::optional<double> visit_day;
  std::string series_uid, site, population;
  // Reviewer-corrected masks (optional), resolved like `path`; used instead of segmenting.
  std::string lungs_mask, lesions_mask;
};

struct Manifest {
  std::string source;  // file name, for messages
  std::string sha256;  // of the file's bytes
  std::vector<ManifestEntry> entries;
};

// Columns subject_id, arm, visit, path (required); visit_day, series_uid, site, population,
// lungs_mask, lesions_mask (optional); other columns are ignored. Every visit must be in `schedule`; a subject is in one
// arm; a subject x visit appears once; ids are usable as folder names. Errors are
// Error(kUsage) "<source>:<line>: <problem>".
Manifest parse_manifest(const std::string& csv_text, const std::string& source,
                        const std::string& base_dir, const trial::VisitSchedule& schedule);
// Error(kInput) when the file does not exist or cannot be read.
Manifest read_manifest(const std::string& path, const trial::VisitSchedule& schedule);

// Days since 1970-01-01 of a DICOM date YYYYMMDD (proleptic Gregorian); nullopt when the
// text is not a valid date.
std::optional<std::int64_t> days_from_dicom_date(const std::string& yyyymmdd);

// Where a scan falls in the schedule: days from baseline is `visit_day` when the manifest gives
// it, else StudyDate minus the baseline scan's StudyDate. in_window is known only when the
// visit has a window and the day is known.
struct VisitTiming {
  std::optional<double> days_from_baseline;
  std::optional<bool> in_window;
};
VisitTiming visit_timing(const trial::ScheduledVisit& visit, std::optional<double> visit_day,
                         const std::string& study_date, const std::string& baseline_study_date);

}  // namespace lungvol::batch
