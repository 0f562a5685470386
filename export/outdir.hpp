#pragma once
// What `lungvol export` puts in the workbook, read from a batch output folder.
#include <string>
#include <vector>

#include "export/workbook.hpp"

namespace lungvol::xlsx {

struct ExportSummary {
  std::vector<std::string> sheets;  // names in workbook order
  std::vector<std::size_t> rows;    // data rows per sheet
  std::string provenance_source;    // results.sqlite or measurements.csv
};

// For a batch folder (OUTDIR/results.sqlite written by `lungvol batch`, opened read-only):
//  Table 2     table2_sheet() of the endpoint results
//  visits      the visits_wide table built from the store's current state (never a CSV that
//              may be older than it)
//  changes, comparison  OUTDIR/endpoint/*.csv as below; refused (Error(kInput)) unless
//              OUTDIR/endpoint/provenance.json records the store's current results state
//  scans       per scan: series UID, input and image hashes, protocol and version, software,
//              analyzed_at, QC score and flags, the reader's decision (who, when, why, masks)
//  provenance  the `runs` table
//  source      results store, results state, protocol name / version / sha256, software
//              versions, schedule, when the endpoint was computed
// For a folder of tables without a results store, in order:
//  visits      OUTDIR/visits_wide.csv
//  changes     OUTDIR/endpoint/changes.csv, with a `unit` column after `endpoint` (unit of
//              baseline, value, abs_change and change; rel_change is % of baseline)
//  comparison  OUTDIR/endpoint/comparison.csv (Table 2 numbers), with a `unit` column after
//              `endpoint` (unit of the medians, quartiles and HL estimate: % for relative
//              changes, the variable's unit for absolute ones)
//  provenance  the `runs` table of OUTDIR/results.sqlite when that file exists, else the
//              distinct provenance columns of OUTDIR/measurements.csv
// Throws Error(kInput) naming the missing file (and the command that makes it).
std::vector<Sheet> outdir_sheets(const std::string& outdir, std::string* provenance_source = nullptr);
// Error(kUsage) unless xlsx_path ends in .xlsx; Error(kOutput) when its folder does not exist.
ExportSummary export_outdir(const std::string& outdir, const std::string& xlsx_path);

// The paper's Table 2 laid out for trial staff: per population (mITT, PP) one row per outcome x
// visit with "median (Q1, Q3)" per arm, "difference (95% CI)" (Hodges-Lehmann), P (3 decimals,
// "<0.001"), n per arm, footnotes naming subjects excluded by the reader or with a zero
// baseline, the method, the review status and the source. Numbers as text at the paper's
// precision (2 decimals).
Sheet table2_sheet(const report::CsvTable& comparison, const report::CsvTable& changes,
                   const std::string& review_sentence, const std::string& source);

// Every column of the `runs` table of a lungvol results.sqlite, typed by SQLite's storage class.
Sheet runs_sheet(const std::string& sqlite_path);

}  // namespace lungvol::xlsx
