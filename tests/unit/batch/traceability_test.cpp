// Traceable results (issue #16, "Traceable"): the protocol's full text with every scan and in
// results.sqlite, the software version with its git commit, and the cross-visit identity checks
// (same series or input for two visits or subjects, PatientID differing within a subject,
// StudyDate order against the visit order, a folder of several patients) stored as flags and
// shown in visits_wide.csv.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "io/dicom_write.hpp"
#include "phantom/phantom.hpp"
#include "report/csv.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch {
namespace {

void write_series(const std::string& dir, const std::string& patient, const std::string& date,
                  std::size_t slices = 24, std::uint64_t seed = 1) {
  phantom::PhantomOptions o;
  o.seed = seed;
  o.size = {64, 64, slices};
  o.spacing = {2.7, 2.7, 6.5};
  const phantom::Phantom p = phantom::make_phantom(o);
  io::CtSeriesMeta meta;
  meta.patient_id = patient;
  meta.study_date = date;
  phantom::write_phantom(p, dir, meta);
}

std::vector<std::vector<std::string>> rows(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::vector<std::vector<std::string>> out;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sqlite3_errmsg(h);
  } else {
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> r;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const auto* t = sqlite3_column_text(st, i);
        r.emplace_back(t ? reinterpret_cast<const char*>(t) : "NULL");
      }
      out.push_back(std::move(r));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

TEST(Traceability, ProtocolTextVersionAndIdentityFlags) {
  const std::string dir = test::temp_dir("traceability");
  write_series(dir + "/s1_base", "P1", "20200301");
  write_series(dir + "/s1_d10", "P1-OTHER", "20200225");  // another PatientID, before baseline
  write_series(dir + "/s2", "P2", "20200301");             // used for both of S2's visits
  write_series(dir + "/s4/a", "P4", "20200301");           // the folder holds two patients:
  write_series(dir + "/s4/b", "X9", "20200301", 16, 2);    // the chosen series has more slices
  write_series(dir + "/s4_d10", "P4", "20200311");
  write_text_atomic(dir + "/m.csv",
                    "subject_id,arm,visit,path\n"
                    "S1,A,baseline,s1_base/dicom\nS1,A,day10,s1_d10/dicom\n"
                    "S2,B,baseline,s2/dicom\nS2,B,day10,s2/dicom\n"
                    "S3,A,baseline,s1_base/dicom\n"
                    "S4,B,baseline,s4\nS4,B,day10,s4_d10/dicom\n");
  const std::string out = dir + "/out";
  const std::string log = dir + "/batch.log";
  ASSERT_EQ(test::run_command("'" + test::lungvol_binary() + "' --threads 1 batch '" + dir +
                                  "/m.csv' -o '" + out + "' --no-qc --no-label-maps",
                              log),
            0)
      << read_text_file(log);
  const std::string db = out + "/results.sqlite";

  // The protocol's text: beside every scan's outputs, in metrics.json and in the store.
  const std::string protocol_file = rows(db, "SELECT protocol_sha256 FROM scans LIMIT 1")[0][0];
  const auto stored = rows(db, "SELECT sha256, name, toml FROM protocols");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0][0], protocol_file);
  EXPECT_EQ(sha256_hex(stored[0][2]), protocol_file) << "the stored text is the file's bytes";
  const std::string scan_dir = out + "/scans/S1/baseline";
  EXPECT_EQ(read_text_file(scan_dir + "/protocol.toml"), stored[0][2]);
  const auto metrics = nlohmann::json::parse(read_text_file(scan_dir + "/metrics.json"));
  EXPECT_EQ(metrics["protocol"]["toml"].get<std::string>(), stored[0][2]);
  EXPECT_EQ(metrics["protocol"]["file"], "protocol.toml");

  // The software version carries the build's commit (or says there is none).
  const std::string version = metrics["software"]["version"].get<std::string>();
  const std::string commit = metrics["software"]["commit"].get<std::string>();
  EXPECT_TRUE(std::regex_match(version, std::regex(R"(\d+\.\d+\.\d+\+(git\.[0-9a-f]{7,40}(\.dirty)?|nogit))")))
      << version;
  if (commit != "unknown") {
    EXPECT_NE(version.find(commit), std::string::npos) << version;
  }
  EXPECT_EQ(rows(db, "SELECT DISTINCT software_version FROM scans")[0][0], version);

  // Identity flags, in the store and in visits_wide.csv.
  std::map<std::string, std::string> flags;  // "S1/day10" -> "flag;flag"
  for (const auto& r : rows(db, "SELECT subject_id, visit, flag FROM identity_flags ORDER BY 1, 2, 3")) {
    auto& f = flags[r[0] + "/" + r[1]];
    f += (f.empty() ? "" : ";") + r[2];
  }
  EXPECT_EQ(flags["S1/baseline"], "same_scan_other_subject");
  EXPECT_EQ(flags["S3/baseline"], "same_scan_other_subject");
  EXPECT_EQ(flags["S1/day10"], "patient_id_differs;study_date_order");
  EXPECT_EQ(flags["S2/baseline"], "same_scan_other_visit");
  EXPECT_EQ(flags["S2/day10"], "same_scan_other_visit;study_date_order");  // same StudyDate
  EXPECT_EQ(flags["S4/baseline"], "several_patients_in_folder");
  EXPECT_EQ(flags.count("S4/day10"), 0u);
  const auto detail = rows(db, "SELECT detail FROM identity_flags WHERE subject_id = 'S1' AND "
                               "visit = 'day10' AND flag = 'patient_id_differs'");
  ASSERT_EQ(detail.size(), 1u);
  EXPECT_EQ(detail[0][0], "PatientID 'P1-OTHER' but 'P1' at baseline");
  const auto patients = rows(db, "SELECT detail FROM identity_flags WHERE flag = 'several_patients_in_folder'");
  EXPECT_NE(patients[0][0].find("'P4', 'X9'"), std::string::npos) << patients[0][0];

  const report::CsvTable wide = report::read_csv(out + "/visits_wide.csv");
  const std::size_t fcol = wide.column("identity_flags"), day = wide.column("visit_day");
  std::map<std::string, std::vector<std::string>> by_key;
  for (const auto& r : wide.rows) by_key[r[0] + "/" + r[2]] = r;
  EXPECT_EQ(by_key["S1/day10"][fcol], "patient_id_differs;study_date_order");
  EXPECT_EQ(by_key["S4/day10"][fcol], "");
  // visit_day from the StudyDates when the manifest does not give it.
  EXPECT_EQ(by_key["S4/day10"][day], "10");
  EXPECT_EQ(by_key["S1/day10"][day], "-5");
}

}  // namespace
}  // namespace lungvol::batch
