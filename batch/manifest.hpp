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
  char delimiter = ',';  // ';' for a semicolon-separated file (Excel in some locales)
  std::vector<ManifestEntry> entries;
};

struct ManifestOptions {
  // Columns lungvol does not use that the manifest may hold (batch --ignore-column); any
  // other unknown column is an error, so a misspelt optional column is never silently ignored.
  std::vector<std::string> ignore_columns;
};

// The manifest's columns: required, then optional.
const std::vector<std::string>& manifest_required_columns();
const std::vector<std::string>& manifest_optional_columns();

// Columns subject_id, arm, visit, path (required); visit_day, series_uid, site, population,
// lungs_mask, lesions_mask (optional); any other column is an error unless listed in
// options.ignore_columns. Comma-separated, or semicolon-separated when the header says so.
// Blank lines, lines of spaces and rows of empty fields (Excel's ",,,") are skipped. Every visit
// must be in `schedule`; a subject is in one arm; a subject x visit appears once; subject,
// visit and arm are usable as folder names (path_component_problem); series_uid is a DICOM UID.
// Errors are Error(kUsage) "<source>:<line>: <problem>".
Manifest parse_manifest(const std::string& csv_text, const std::string& source,
                        const std::string& base_dir, const trial::VisitSchedule& schedule,
                        const ManifestOptions& options = {});
// Error(kInput) when the file does not exist or cannot be read.
Manifest read_manifest(const std::string& path, const trial::VisitSchedule& schedule,
                       const ManifestOptions& options = {});

// Error(kUsage) "<where>: <what> '<name>' cannot name a folder: <problem>" when the name is
// not a usable path component (core/names.hpp).
void require_path_component(const std::string& what, const std::string& name,
                            const std::string& where);
// Every visit name of a schedule (they name folders too); `source` names the schedule file.
void check_schedule_names(const trial::VisitSchedule& schedule, const std::string& source);

// The manifest's series_uid (a DICOM UID, core/names.hpp); Error(kUsage) at `where` otherwise.
void require_uid(const std::string& uid, const std::string& where);

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
