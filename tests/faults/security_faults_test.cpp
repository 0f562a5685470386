// The batch's security boundary (issue #19, items 9-13): hostile names never reach a path
// outside OUTDIR, a generated Slurm script, or a spreadsheet formula; hostile DICOM UIDs are
// refused; --jobs is capped; absurdly long ids are refused before anything is written.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <regex>
#include <thread>

#include "tests/faults/fault_support.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::faults {
namespace {

constexpr int kUsage = 2;

std::string q(const std::string& s) {  // one shell word
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Every file and folder under `root` (relative path -> size, folders as -1), except `skip`.
std::map<std::string, long> snapshot(const std::string& root, const std::string& skip = "") {
  std::map<std::string, long> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string p = it->path().string();
    if (!skip.empty() && (p == skip || p.rfind(skip + "/", 0) == 0)) {
      it.disable_recursion_pending();
      continue;
    }
    out[fs::relative(it->path(), root).string()] =
        it->is_regular_file() ? static_cast<long>(it->file_size()) : -1;
  }
  return out;
}

std::string csv_cell(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// ---- path traversal (#19 item 9) ----------------------------------------------------------

struct Hostile {
  std::string what;
  std::string schedule;  // TOML; "" = default schedule
  std::string rows;      // manifest rows after the header (path column: PHANTOM)
  std::string expect;    // in the message
};

TEST(SecurityFaults, NothingIsEverWrittenOutsideOutdir) {
  const std::string series = phantom_series("traversal");
  const std::string sandbox = test::temp_dir("sec_traversal");
  const std::string outdir = sandbox + "/a/b/out";
  fs::create_directories(sandbox + "/a/b");
  const std::string long_id(300, 'x');
  const std::vector<Hostile> cases = {
      {"schedule visit ../../../../escaped_visit",
       "[[visit]]\nname = \"baseline\"\nday = 0\nbaseline = true\n"
       "[[visit]]\nname = \"../../../../escaped_visit\"\nday = 10\n",
       "S1,A,baseline,PHANTOM\nS1,A,../../../../escaped_visit,PHANTOM\n", "escaped_visit"},
      {"schedule visit ..", "[[visit]]\nname = \"baseline\"\nday = 0\nbaseline = true\n"
                            "[[visit]]\nname = \"..\"\nday = 10\n",
       "S1,A,baseline,PHANTOM\nS1,A,..,PHANTOM\n", "'..'"},
      {"schedule visit ../S1/baseline", "[[visit]]\nname = \"baseline\"\nday = 0\nbaseline = true\n"
                                        "[[visit]]\nname = \"../S1/baseline\"\nday = 10\n",
       "S1,A,baseline,PHANTOM\nS2,A,../S1/baseline,PHANTOM\n", "cannot name a folder"},
      {"schedule visit .hidden", "[[visit]]\nname = \"baseline\"\nday = 0\nbaseline = true\n"
                                 "[[visit]]\nname = \".hidden\"\nday = 10\n",
       "S1,A,baseline,PHANTOM\n", ".hidden"},
      {"subject ..", "", "..,A,baseline,PHANTOM\n", "subject_id '..'"},
      {"subject ../S2", "", "../S2,A,baseline,PHANTOM\n", "subject_id '../S2'"},
      {"subject with a backslash", "", "..\\x,A,baseline,PHANTOM\n", "subject_id"},
      {"subject with a newline", "", csv_cell("S1\n../../x") + ",A,baseline,PHANTOM\n",
       "control character"},
      {"arm ../../x", "", "S1,../../x,baseline,PHANTOM\n", "arm '../../x'"},
      {"subject of 300 bytes", "", long_id + ",A,baseline,PHANTOM\n", "300 bytes long"},
      {"series_uid =HYPERLINK()", "", "S1,A,baseline,PHANTOM," + csv_cell("=HYPERLINK(\"http://x\")") + "\n",
       "not a DICOM UID"},
  };
  const auto before = snapshot(sandbox);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string manifest = sandbox + "/manifest.csv";
    std::string rows = c.rows;
    for (std::size_t at = rows.find("PHANTOM"); at != std::string::npos; at = rows.find("PHANTOM"))
      rows.replace(at, 7, series);
    const bool with_uid = c.rows.find("HYPERLINK") != std::string::npos;
    write_file(manifest, std::string("subject_id,arm,visit,path") + (with_uid ? ",series_uid" : "") +
                             "\n" + rows);
    std::string args = "batch " + q(manifest) + " -o " + q(outdir) + " --no-qc --no-label-maps";
    if (!c.schedule.empty()) {
      write_file(sandbox + "/schedule.toml", c.schedule);
      args += " --schedule " + q(sandbox + "/schedule.toml");
    }
    const Result r = lungvol(args);
    EXPECT_EQ(r.code, kUsage) << r.output;
    EXPECT_TRUE(contains(r.output, c.expect)) << r.output;
    EXPECT_FALSE(fs::exists(outdir)) << "refused before anything was written";
    fs::remove(manifest);
    fs::remove(sandbox + "/schedule.toml");
    EXPECT_EQ(snapshot(sandbox), before) << "a file appeared outside OUTDIR";
  }
  // The Slurm task list is a file too: an edited one cannot steer a task outside OUTDIR.
  write_file(sandbox + "/manifest.csv", "subject_id,arm,visit,path\nS1,A,baseline," + series + "\n");
  const std::string fake = sandbox + "/bin";
  fs::create_directories(fake);
  write_file(fake + "/sbatch", "#!/bin/sh\necho 4242\n");
  fs::permissions(fake + "/sbatch", fs::perms::owner_all);
  Result r = lungvol("batch " + q(sandbox + "/manifest.csv") + " -o " + q(outdir) +
                         " --executor slurm --no-qc --no-label-maps",
                     "PATH=" + q(fake) + ":$PATH");
  ASSERT_EQ(r.code, 0) << r.output;
  std::string tasks = read_file(outdir + "/slurm/tasks.json");
  const auto at = tasks.find("\"subject_id\": \"S1\"");
  ASSERT_NE(at, std::string::npos) << tasks;
  tasks.replace(at, std::string("\"subject_id\": \"S1\"").size(), "\"subject_id\": \"../../../escaped\"");
  write_file(outdir + "/slurm/tasks.json", tasks);
  const auto before_task = snapshot(sandbox, outdir);
  r = lungvol("batch --slurm-task 0 -o " + q(outdir));
  EXPECT_EQ(r.code, kUsage) << r.output;
  EXPECT_TRUE(contains(r.output, "cannot name a folder")) << r.output;
  EXPECT_EQ(snapshot(sandbox, outdir), before_task) << "a file appeared outside OUTDIR";
  EXPECT_FALSE(fs::exists(outdir + "/scans")) << "nothing analyzed";

  // Control: a batch with unusual but legal names writes only inside OUTDIR.
  fs::remove_all(outdir);
  write_file(sandbox + "/manifest.csv",
             "subject_id,arm,visit,path\n" + csv_cell("Müller 01, (b)") + ",arm one,baseline," +
                 series + "\n=1+1,@two,baseline," + series + "\n");
  const auto before_ok = snapshot(sandbox, outdir);
  r = lungvol("batch " + q(sandbox + "/manifest.csv") + " -o " + q(outdir) + " --no-qc --no-label-maps");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(snapshot(sandbox, outdir), before_ok);
  EXPECT_TRUE(fs::is_regular_file(outdir + "/scans/Müller 01, (b)/baseline/metrics.json"));
  EXPECT_TRUE(fs::is_regular_file(outdir + "/scans/=1+1/baseline/metrics.json"));
}

// ---- Slurm scripts (#19 item 10) ------------------------------------------------------------

// Hostile output folders: refused when they hold a control character, otherwise quoted so that
// bash runs exactly `lungvol ... -o <that folder>`.
TEST(SecurityFaults, SlurmScriptsNeverRunAHostileName) {
  const std::string series = phantom_series("slurm_hostile");
  const std::string sandbox = test::temp_dir("sec_slurm");
  const std::string fake = sandbox + "/bin";
  fs::create_directories(fake);
  write_file(fake + "/sbatch", "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '" + sandbox + "/sbatch.args'\necho 4242\n");
  fs::permissions(fake + "/sbatch", fs::perms::owner_all);
  write_file(sandbox + "/m.csv", "subject_id,arm,visit,path\nS1,A,baseline," + series + "\n");
  const std::string path_prefix = "PATH=" + q(fake) + ":$PATH";
  const std::string pwned = sandbox + "/pwned";

  // A newline (or any control character) in OUTDIR, --partition or --slurm-opt: refused, nothing
  // written, nothing submitted.
  for (const auto& [what, args] : std::vector<std::pair<std::string, std::string>>{
           {"newline in OUTDIR", "-o " + q(sandbox + "/out\ntouch " + pwned + " #")},
           {"carriage return in OUTDIR", "-o " + q(sandbox + "/out\rtouch " + pwned)},
           {"newline in --partition", "-o " + q(sandbox + "/out2") + " --partition " + q("short\ntouch " + pwned)},
           {"newline in --slurm-opt", "-o " + q(sandbox + "/out3") + " --slurm-opt=" + q("--time=1\ntouch " + pwned)},
           {"backslash in OUTDIR", "-o " + q(sandbox + "/out\\4")}}) {
    SCOPED_TRACE(what);
    const Result r = lungvol("batch " + q(sandbox + "/m.csv") + " " + args + " --executor slurm", path_prefix);
    EXPECT_EQ(r.code, kUsage) << r.output;
    EXPECT_TRUE(contains(r.output, "--executor slurm")) << r.output;
    EXPECT_FALSE(fs::exists(sandbox + "/sbatch.args")) << "nothing may be submitted";
    EXPECT_FALSE(fs::exists(pwned));
  }
  for (const auto& e : fs::directory_iterator(sandbox)) {
    const std::string n = e.path().filename().string();
    EXPECT_TRUE(n == "bin" || n == "m.csv") << "left behind: " << n;
  }

  // Shell metacharacters are legal in a folder name: quoted, they stay a name.
  const std::string hostile = sandbox + "/o $(touch " + pwned + ") `touch " + pwned + "` ';touch " +
                              pwned + ";' \"x\" 100%A";
  Result r = lungvol("batch " + q(sandbox + "/m.csv") + " -o " + q(hostile) +
                         " --executor slurm --no-qc --no-label-maps",
                     path_prefix);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(pwned));
  const std::string args = read_file(sandbox + "/sbatch.args");
  EXPECT_TRUE(contains(args, "--output=" + hostile.substr(0, hostile.size() - 2) + "%%A/slurm/logs/task-%A_%a.log"))
      << "a '%' of the folder name is escaped in Slurm's file name pattern: " << args;
  const std::string script = read_file(hostile + "/slurm/task.sbatch");
  for (std::size_t line = 0, at = 0; at < script.size(); ++line) {
    const std::size_t end = script.find('\n', at);
    const std::string text = script.substr(at, end - at);
    EXPECT_FALSE(contains(text, "#SBATCH")) << text;
    at = end == std::string::npos ? script.size() : end + 1;
  }
  // Run the generated script as Slurm would: the task analyzes its scan into the hostile folder.
  r.code = test::run_command("cd " + q(sandbox) + " && SLURM_ARRAY_TASK_ID=0 bash " +
                                 q(hostile + "/slurm/task.sbatch") + " 0",
                             sandbox + "/task.log");
  EXPECT_EQ(r.code, 0) << read_file(sandbox + "/task.log");
  EXPECT_TRUE(fs::is_regular_file(hostile + "/slurm/tasks/0/result.json"));
  EXPECT_TRUE(fs::is_regular_file(hostile + "/scans/S1/baseline/metrics.json"));
  EXPECT_FALSE(fs::exists(pwned)) << "the script ran a command from the folder name";
  // An array index that is not a number never reaches bash's arithmetic.
  r.code = test::run_command("SLURM_ARRAY_TASK_ID='0+a[$(touch " + pwned + ")]' bash " +
                                 q(hostile + "/slurm/task.sbatch") + " 0",
                             sandbox + "/task2.log");
  EXPECT_EQ(r.code, 2) << read_file(sandbox + "/task2.log");
  EXPECT_FALSE(fs::exists(pwned));
}

// ---- CSV injection (#19 item 11) ------------------------------------------------------------

bool plain_number(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == '\0' && s.find_first_of("xXpP") == std::string::npos;
}

// Every cell of a CSV file as written (RFC 4180, quotes removed, nothing else undone).
std::vector<std::string> raw_cells(const std::string& text) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',' || c == '\n') {
      cells.push_back(cell);
      cell.clear();
    } else {
      cell.push_back(c);
    }
  }
  return cells;
}

// No cell a spreadsheet would evaluate: none starts with = + - @ TAB CR unless it is a number.
void expect_no_formula(const std::string& file) {
  SCOPED_TRACE(file);
  std::size_t negatives = 0;
  for (const auto& c : raw_cells(read_file(file))) {
    if (c.empty()) continue;
    const char f = c[0];
    if (f == '=' || f == '+' || f == '-' || f == '@' || f == '\t' || f == '\r') {
      EXPECT_TRUE(plain_number(c)) << "formula cell: " << c;
      negatives += plain_number(c) && f == '-';
    }
  }
  (void)negatives;
}

TEST(SecurityFaults, CsvCellsNeverStartAFormula) {
  const std::string series = phantom_series("csv_injection");
  const std::string dir = test::temp_dir("sec_csv");
  write_file(dir + "/m.csv",
             "subject_id,arm,visit,path,site,population\n"
             "=1+2,@risk,baseline," + series + "," + csv_cell("=HYPERLINK(\"http://evil\",\"x\")") + ",+1\n"
             "=1+2,@risk,day10," + series + ",-x,\n"
             "-S2,+arm,baseline," + series + ",@a,\n"
             "-S2,+arm,day10," + series + ",\t=1,\n");
  Result r = lungvol("batch " + q(dir + "/m.csv") + " -o " + q(dir + "/out") + " --no-qc --no-label-maps");
  ASSERT_EQ(r.code, 0) << r.output;
  r = lungvol("endpoint " + q(dir + "/out"));
  ASSERT_EQ(r.code, 0) << r.output;
  r = lungvol("sweep " + q(dir + "/out") + " --plot-visit day10");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* f : {"/out/measurements.csv", "/out/visits_wide.csv", "/out/endpoint/changes.csv",
                        "/out/endpoint/comparison.csv", "/out/sweep/sweep.csv",
                        "/out/scans/=1+2/baseline/measurements.csv"}) {
    expect_no_formula(dir + f);
  }
  // Neutralised with one apostrophe, documented; numbers (e.g. negative HU) stay numbers.
  const std::string wide = read_file(dir + "/out/visits_wide.csv");
  EXPECT_TRUE(contains(wide, "'=1+2,'@risk,baseline")) << wide;
  EXPECT_TRUE(contains(wide, "'-S2,'+arm,day10")) << wide;
  EXPECT_TRUE(contains(wide, ",-8")) << "negative numbers are written as numbers: " << wide;
  const std::string tidy = read_file(dir + "/out/measurements.csv");
  EXPECT_TRUE(contains(tidy, "\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\"")) << tidy.substr(0, 600);
  // lungvol's own readers undo it: the endpoint analysis sees the subject '=1+2' as it is.
  const std::string changes = read_file(dir + "/out/endpoint/changes.csv");
  EXPECT_TRUE(contains(changes, "'=1+2,'@risk,")) << changes.substr(0, 400);
  EXPECT_FALSE(contains(changes, "''=1+2")) << "protected once, not twice";
}

// A DICOM UID that is not a UID (here a spreadsheet formula) never reaches an output.
TEST(SecurityFaults, HostileSeriesUidIsRefused) {
  const std::string series = phantom_series("hostile_uid");
  // DCMTK will not write an invalid UI value: the bytes are replaced in place, same length.
  const std::string uid = dicom_string(slice_files(series)[0], 0x0020, 0x000e);
  std::string hostile = "=HYPERLINK(\"http://evil/";
  hostile += std::string(uid.size() - hostile.size() - 6, 'x') + "\",\"x\")";
  ASSERT_EQ(hostile.size(), uid.size());
  for (const auto& f : slice_files(series)) {
    std::string bytes = read_file(f);
    const auto at = bytes.find(uid);
    ASSERT_NE(at, std::string::npos);
    bytes.replace(at, uid.size(), hostile);
    write_file(f, bytes);
  }
  ASSERT_EQ(dicom_string(slice_files(series)[0], 0x0020, 0x000e), hostile);
  const std::string out = test::temp_dir("sec_uid") + "/new/out";
  const Result r = lungvol("analyze " + q(series) + " -o " + q(out) + " --no-qc");
  EXPECT_EQ(r.code, 4) << r.output;
  EXPECT_TRUE(contains(r.output, "SeriesInstanceUID")) << r.output;
  EXPECT_TRUE(contains(r.output, "not a valid DICOM UID")) << r.output;
  EXPECT_FALSE(fs::exists(fs::path(out).parent_path())) << "no folder left behind";
}

// ---- --jobs (#19 item 12, batch part) --------------------------------------------------------

TEST(SecurityFaults, JobsAboveTheCoreCountAreCapped) {
  const std::string series = phantom_series("jobs_cap");
  const std::string dir = test::temp_dir("sec_jobs");
  std::string csv = "subject_id,arm,visit,path\n";
  const unsigned rows = std::max(1u, std::thread::hardware_concurrency()) + 1;
  for (unsigned s = 0; s < rows; ++s) {
    csv += "S" + std::to_string(s) + ",A,baseline," + series + "\n";
  }
  write_file(dir + "/m.csv", csv);
  const Result r = lungvol("batch " + q(dir + "/m.csv") + " -o " + q(dir + "/out") +
                           " --jobs 64 --no-qc --no-label-maps");
  ASSERT_EQ(r.code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(--jobs 64 is more than the (\d+) core\(s\))")))
      << r.output;
  const int cores = std::stoi(m[1]);
  EXPECT_GE(cores, 1);
  EXPECT_LE(cores, static_cast<int>(rows));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/out/results.sqlite").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT jobs, n_analyzed FROM runs", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), std::min(cores, static_cast<int>(rows)));
  EXPECT_EQ(sqlite3_column_int(st, 1), static_cast<int>(rows));
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// ---- long ids (#19 item 13) ------------------------------------------------------------------

// A subject id longer than a file name can be is refused with the manifest line; a store that
// holds one anyway (written by an older lungvol) still gives a report.
TEST(SecurityFaults, OverlongSubjectIdNeverBreaksTheReport) {
  const std::string series = phantom_series("long_id");
  const std::string dir = test::temp_dir("sec_long");
  const std::string long_id(300, 's');
  write_file(dir + "/m.csv", "subject_id,arm,visit,path\nS1,A,baseline," + series + "\n" +
                                 long_id + ",B,baseline," + series + "\n");
  Result r = lungvol("batch " + q(dir + "/m.csv") + " -o " + q(dir + "/out") + " --no-qc");
  EXPECT_EQ(r.code, kUsage) << r.output;
  EXPECT_TRUE(contains(r.output, "m.csv:3: subject_id")) << r.output;
  EXPECT_TRUE(contains(r.output, "300 bytes long, at most 100")) << r.output;

  write_file(dir + "/m.csv", "subject_id,arm,visit,path\nS1,A,baseline," + series +
                                 "\nS2,B,baseline," + series + "\n");
  r = lungvol("batch " + q(dir + "/m.csv") + " -o " + q(dir + "/out") + " --no-qc");
  ASSERT_EQ(r.code, 0) << r.output;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/out/results.sqlite").c_str(), &db), SQLITE_OK);
  const std::string sql = "UPDATE scans SET subject_id = '" + long_id + "' WHERE subject_id = 'S2';"
                          "UPDATE manifest SET subject_id = '" + long_id + "' WHERE subject_id = 'S2';";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  r = lungvol("report " + q(dir + "/out"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::is_regular_file(dir + "/out/report/index.html"));
  std::size_t pages = 0;
  for (const auto& e : fs::directory_iterator(dir + "/out/report/scans")) {
    EXPECT_LT(e.path().filename().string().size(), 255u);
    ++pages;
  }
  EXPECT_EQ(pages, 2u);
}

}  // namespace
}  // namespace lungvol::faults
