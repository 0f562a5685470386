// `lungvol export`'s workbook read back by an independent reader (openpyxl): every value of the
// CSV inputs arrives as a number (or text, boolean, empty) equal to the input.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "export/outdir.hpp"
#include "report/csv.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::xlsx {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kVisits =
    "subject_id,arm,visit,status,visit_day,lesion_pct,ggo_pct,solid_pct,lung_ml,mean_hu,series_instance_uid\n"
    "007,MSC,baseline,ok,0,12.5,8.25,4.25,4321.5,-702.25,1.2.840.113619.2.55.3\n"
    "007,MSC,day28,ok,27,6.125,4.0625,2.0625,4500,-780.5,1.2.840.113619.2.55.4\n"
    "B12,Placebo,baseline,failed,,,,,,,\n"
    "B12,Placebo,day28,ok,28,0.1,1e-05,0.09999,3999.875,-850,1.2.3\n";

const char* kChanges =
    "subject_id,arm,endpoint,visit,population,baseline,value,source_visit,abs_change,rel_change,"
    "change,included,flags\n"
    "007,MSC,lesion_pct_change,day28,mITT,12.5,6.125,day28,-6.375,-51,-51,true,\n"
    "007,MSC,mean_hu_abs_change,day28,PP,-702.25,-780.5,day28,-78.25,11.142755428978284,-78.25,true,\n"
    "B12,Placebo,lesion_pct_change,day28,PP,,0.1,day28,,,,false,no_baseline;missing\n";

const char* kComparison =
    "endpoint,visit,population,arm_a,n_a,median_a,median_ci_low_a,median_ci_high_a,arm_b,n_b,"
    "median_b,median_ci_low_b,median_ci_high_b,hl_estimate,hl_ci_low,hl_ci_high,w_statistic,"
    "p_value,method,change,q1_a,q3_a,median_ci_coverage_a,q1_b,q3_b,median_ci_coverage_b,"
    "hl_conf_level\n"
    "lesion_pct_change,day28,mITT,MSC,12,-51,-60.5,-40.25,Placebo,11,-20,-30,-5,-30.000000000000004,"
    "-45.5,-12,23,0.00012345678901234568,exact,relative,-55,-45,0.96142578125,-25,-10,0.98828125,0.95\n"
    "mean_hu_abs_change,day28,PP,MSC,3,-78.25,,,Placebo,2,-10,,,-68.25,,,6,1,exact,absolute,"
    "-80,-70,,-12,-8,,\n";

const char* kMeasurements =
    "series_instance_uid,input_sha256,protocol,protocol_version,protocol_sha256,software_version,"
    "analyzed_at,region,metric,value,unit\n"
    "1.2.3,ab12,covid-ggo-solid,1.0.0,cd34,0.1.0,2026-01-02T03:04:05Z,lungs,volume_ml,4321.5,mL\n"
    "1.2.3,ab12,covid-ggo-solid,1.0.0,cd34,0.1.0,2026-01-02T03:04:05Z,lungs,lesion_pct,12.5,%\n"
    "1.2.4,ef56,covid-ggo-solid,1.0.0,cd34,0.1.0,2026-01-03T03:04:05Z,lungs,volume_ml,4500,mL\n";

std::string make_outdir(const std::string& tag, bool with_measurements = true) {
  const std::string dir = test::temp_dir(tag);
  write_text_atomic(dir + "/visits_wide.csv", kVisits);
  ensure_directory(dir + "/endpoint");
  write_text_atomic(dir + "/endpoint/changes.csv", kChanges);
  write_text_atomic(dir + "/endpoint/comparison.csv", kComparison);
  if (with_measurements) write_text_atomic(dir + "/measurements.csv", kMeasurements);
  return dir;
}

json read_back(const std::string& xlsx) {
  const std::string out = xlsx + ".json";
  const std::string cmd = std::string("'") + LUNGVOL_PYTHON3 + "' '" + LUNGVOL_READ_XLSX_PY + "' '" +
                          xlsx + "' '" + out + "'";
  const int rc = test::run_command(cmd, xlsx + ".log");
  EXPECT_EQ(rc, 0) << "openpyxl reader failed (python3-openpyxl installed? scripts/setup.sh): "
                   << read_text_file(xlsx + ".log");
  if (rc != 0) return json::object();
  return json::parse(read_text_file(out));
}

const json& sheet(const json& wb, const std::string& name) {
  for (const json& s : wb.at("sheets"))
    if (s.at("name") == name) return s;
  throw std::runtime_error("no sheet " + name);
}

// Every input field against the cell read back: empty -> null, number -> a JSON number equal
// to the CSV's value (libxlsxwriter stores 16 significant digits), else the same text.
// `skip_col` is an inserted column (unit) that has no CSV counterpart.
void expect_cells_equal(const json& s, const report::CsvTable& csv, int skip_col = -1,
                        const std::vector<std::string>& text_columns = {}) {
  const json& rows = s.at("rows");
  ASSERT_EQ(rows.size(), csv.rows.size() + 1) << s.at("name");
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const json& got = rows[r + 1];
    std::size_t g = 0;
    for (std::size_t c = 0; c < csv.header.size(); ++c, ++g) {
      if (int(g) == skip_col) ++g;
      const std::string& f = csv.rows[r][c];
      const json& v = got.at(g);
      const std::string where = std::string(s.at("name")) + " row " + std::to_string(r + 1) + " " +
                                csv.header[c] + " = '" + f + "'";
      const bool text_col = std::find(text_columns.begin(), text_columns.end(), csv.header[c]) !=
                            text_columns.end();
      if (f.empty()) {
        EXPECT_TRUE(v.is_null()) << where << " got " << v.dump();
      } else if (f == "true" || f == "false") {
        ASSERT_TRUE(v.is_boolean()) << where << " got " << v.dump();
        EXPECT_EQ(v.get<bool>(), f == "true") << where;
      } else if (!text_col && (std::isdigit(static_cast<unsigned char>(f[0])) || f[0] == '-') &&
                 f.find_first_not_of("0123456789.-+e") == std::string::npos &&
                 std::count(f.begin(), f.end(), '.') <= 1) {
        ASSERT_TRUE(v.is_number()) << where << " got " << v.dump();
        const double want = std::stod(f);
        EXPECT_NEAR(v.get<double>(), want, std::abs(want) * 1e-15) << where;
      } else {
        ASSERT_TRUE(v.is_string()) << where << " got " << v.dump();
        EXPECT_EQ(v.get<std::string>(), f) << where;
      }
    }
  }
}

std::vector<std::string> header_of(const json& s) {
  std::vector<std::string> h;
  for (const json& v : s.at("rows").at(0)) h.push_back(v.get<std::string>());
  return h;
}

TEST(ExportUnits, ColumnSuffixes) {
  EXPECT_EQ(unit_for_column("lesion_pct"), "%");
  EXPECT_EQ(unit_for_column("lung_ml"), "mL");
  EXPECT_EQ(unit_for_column("p15_hu"), "HU");
  EXPECT_EQ(unit_for_column("mass_g"), "g");
  EXPECT_EQ(unit_for_column("timing_s"), "s");
  EXPECT_EQ(unit_for_column("days_from_baseline"), "days");
  EXPECT_FALSE(unit_for_column("subject_id").has_value());
  EXPECT_EQ(endpoint_base_column("lesion_pct_change"), "lesion_pct");
  EXPECT_EQ(endpoint_base_column("mean_hu_abs_change"), "mean_hu");
}

TEST(ExportUnits, NumbersVersusIdentifiers) {
  EXPECT_EQ(parse_csv_number("-12.5"), -12.5);
  EXPECT_EQ(parse_csv_number("0"), 0.0);
  EXPECT_EQ(parse_csv_number("0.25"), 0.25);
  EXPECT_EQ(parse_csv_number("1e-05"), 1e-05);
  for (const char* text : {"007", "+3", "0x1F", "inf", "nan", "", "1.2.3", "12a", ".5"}) {
    EXPECT_FALSE(parse_csv_number(text).has_value()) << text;
  }
}

TEST(Export, WorkbookHoldsTheCsvValuesAsNumbers) {
  const std::string dir = make_outdir("export_csv");
  const std::string xlsx = dir + "/trial.xlsx";
  const ExportSummary s = export_outdir(dir, xlsx);
  EXPECT_EQ(s.sheets, (std::vector<std::string>{"visits", "changes", "comparison", "provenance"}));
  EXPECT_EQ(s.provenance_source, dir + "/measurements.csv");
  const json wb = read_back(xlsx);
  ASSERT_TRUE(wb.contains("sheets"));

  const json& visits = sheet(wb, "visits");
  EXPECT_EQ(header_of(visits),
            (std::vector<std::string>{"subject_id", "arm", "visit", "status", "visit_day (days)",
                                      "lesion_pct (%)", "ggo_pct (%)", "solid_pct (%)",
                                      "lung_ml (mL)", "mean_hu (HU)", "series_instance_uid"}));
  expect_cells_equal(visits, report::parse_csv(kVisits), -1, {"subject_id"});
  EXPECT_EQ(visits["rows"][1][0], "007");  // an identifier keeps its leading zeros
  EXPECT_EQ(visits.at("freeze_panes"), "A2");
  EXPECT_EQ(visits.at("autofilter"), "A1:K5");
  for (const json& w : visits.at("widths")) EXPECT_GE(w.get<double>(), 8.0);
  EXPECT_GE(visits.at("widths")[10].get<double>(), 22.0);  // "1.2.840.113619.2.55.3" fits

  const json& changes = sheet(wb, "changes");
  const auto ch = header_of(changes);
  ASSERT_EQ(ch.size(), 14u);
  EXPECT_EQ(ch[2], "endpoint");
  EXPECT_EQ(ch[3], "unit");
  EXPECT_EQ(ch[10], "rel_change (%)");
  EXPECT_EQ(changes["rows"][1][3], "%");
  EXPECT_EQ(changes["rows"][2][3], "HU");
  expect_cells_equal(changes, report::parse_csv(kChanges), 3, {"subject_id"});

  const json& cmp = sheet(wb, "comparison");
  EXPECT_EQ(header_of(cmp)[1], "unit");
  EXPECT_EQ(cmp["rows"][1][1], "%");   // relative change
  EXPECT_EQ(cmp["rows"][2][1], "HU");  // absolute change of an HU variable
  expect_cells_equal(cmp, report::parse_csv(kComparison), 1);

  const json& prov = sheet(wb, "provenance");
  ASSERT_EQ(prov.at("rows").size(), 3u);  // header + the two distinct scans
  EXPECT_EQ(prov["rows"][0][0], "series_instance_uid");
  EXPECT_EQ(prov["rows"][1][1], "ab12");
  EXPECT_EQ(prov["rows"][2][0], "1.2.4");
  EXPECT_EQ(prov["rows"][2][3], "1.0.0");
  EXPECT_EQ(prov["rows"][2][6], "2026-01-03T03:04:05Z");

  // Atomic: nothing but the inputs, the workbook and the reader's files is left behind.
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    EXPECT_TRUE(n == "visits_wide.csv" || n == "endpoint" || n == "measurements.csv" ||
                n.rfind("trial.xlsx", 0) == 0)
        << n;
  }
}

TEST(Export, ProvenanceFromResultsSqliteRuns) {
  const std::string dir = make_outdir("export_sqlite", false);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/results.sqlite").c_str(), &db), SQLITE_OK);
  const char* sql =
      "CREATE TABLE runs(run_id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, "
      "software_version TEXT, lesion_split_hu REAL, n_total INTEGER, host TEXT);"
      "INSERT INTO runs VALUES(1, '2026-01-02T00:00:00Z', '0.1.0', -300.0, 40, NULL);"
      "INSERT INTO runs VALUES(2, '2026-01-05T00:00:00Z', '0.1.1', -250.5, 41, 'node7');";
  ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  const std::string xlsx = dir + "/out.xlsx";
  EXPECT_EQ(export_outdir(dir, xlsx).provenance_source, dir + "/results.sqlite");
  const json wb = read_back(xlsx);
  ASSERT_TRUE(wb.contains("sheets"));
  const json& prov = sheet(wb, "provenance");
  EXPECT_EQ(header_of(prov), (std::vector<std::string>{"run_id", "started_at", "software_version",
                                                        "lesion_split_hu (HU)", "n_total", "host"}));
  ASSERT_EQ(prov.at("rows").size(), 3u);
  EXPECT_EQ(prov["rows"][1][0].get<double>(), 1.0);
  EXPECT_EQ(prov["rows"][1][3].get<double>(), -300.0);
  EXPECT_TRUE(prov["rows"][1][5].is_null());
  EXPECT_EQ(prov["rows"][2][2], "0.1.1");
  EXPECT_EQ(prov["rows"][2][3].get<double>(), -250.5);
  EXPECT_EQ(prov["rows"][2][4].get<double>(), 41.0);
  EXPECT_EQ(prov["rows"][2][5], "node7");
}

ExitCode error_code_of(const std::function<void()>& f, std::string* message) {
  try {
    f();
  } catch (const Error& e) {
    *message = e.what();
    return e.code();
  }
  return ExitCode::kOk;
}

TEST(Export, MissingInputsAreInputErrorsNamingTheFile) {
  std::string msg;
  const std::string none = test::temp_dir("export_none") + "/nope";
  EXPECT_EQ(error_code_of([&] { export_outdir(none, none + ".xlsx"); }, &msg), ExitCode::kInput);
  EXPECT_NE(msg.find("nope"), std::string::npos) << msg;

  const std::string dir = make_outdir("export_missing");
  fs::remove(dir + "/endpoint/comparison.csv");
  EXPECT_EQ(error_code_of([&] { export_outdir(dir, dir + "/x.xlsx"); }, &msg), ExitCode::kInput);
  EXPECT_NE(msg.find("comparison.csv"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lungvol endpoint"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/x.xlsx"));

  const std::string dir2 = make_outdir("export_noprov", false);
  EXPECT_EQ(error_code_of([&] { export_outdir(dir2, dir2 + "/x.xlsx"); }, &msg), ExitCode::kInput);
  EXPECT_NE(msg.find("measurements.csv"), std::string::npos) << msg;
}

}  // namespace
}  // namespace lungvol::xlsx
