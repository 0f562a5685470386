// Outputs that cannot be written: exit 7, a message naming the path, and never a partial file
// under a final name (every output is written to a temporary name and renamed).
#include <gtest/gtest.h>

#include <filesystem>
#include <cstdio>
#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "tests/faults/fault_support.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::faults {
namespace {

constexpr int kOutput = 7;

std::string analyze(const std::string& input, const std::string& out) {
  return "analyze '" + input + "' -o '" + out + "' --no-qc --no-label-maps";
}

const std::string& shared_input() {
  static const std::string dir = phantom_series("output_input");
  return dir;
}

// The outputs of an unconstrained run: what a complete file looks like.
const std::map<std::string, std::string>& reference_outputs() {
  static const std::map<std::string, std::string> ref = [] {
    const std::string out = test::temp_dir("fault_ref_out");
    const Result r = lungvol(analyze(shared_input(), out));
    EXPECT_EQ(r.code, 0) << r.output;
    std::map<std::string, std::string> m;
    for (const auto& [name, size] : list_files(out)) m[name] = read_file(out + "/" + name);
    return m;
  }();
  return ref;
}

// Every file left in `dir` (a copy of a constrained run's output folder) is complete: no
// temporary files, the same name set as a full run, each file parses / has its full content.
void expect_only_complete_files(const std::string& dir, const std::string& context) {
  const auto& ref = reference_outputs();
  for (const auto& [name, size] : list_files(dir)) {
    SCOPED_TRACE(context + ": " + name);
    EXPECT_FALSE(contains(name, ".tmp")) << "temporary file left behind";
    ASSERT_TRUE(ref.count(name)) << "unexpected file";
    const std::string content = read_file(dir + "/" + name);
    const std::string& full = ref.at(name);
    if (name == "metrics.json") {
      // Times differ between runs; the document must be whole and name the same input.
      const auto j = nlohmann::json::parse(content, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << "metrics.json is not valid JSON";
      EXPECT_EQ(j.size(), nlohmann::json::parse(full).size());
    } else if (name.size() > 4 && name.substr(name.size() - 4) == ".csv") {
      // Whole: the same rows as the complete file (analysis times aside).
      const std::regex time(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
      EXPECT_EQ(std::regex_replace(content, time, "T"), std::regex_replace(full, time, "T"))
          << "CSV differs from the complete one";
    } else {
      // DICOM SEG/SR carry fresh UIDs and times: compare sizes within 1 %.
      EXPECT_NEAR(static_cast<double>(size), static_cast<double>(full.size()),
                  0.01 * static_cast<double>(full.size()));
    }
  }
}

TEST(OutputFaults, OutdirIsARegularFile) {
  const std::string base = test::temp_dir("fault_outfile");
  const std::string out = base + "/results";
  write_file(out, "precious\n");
  const Result r = lungvol(analyze(shared_input(), out));
  EXPECT_EQ(r.code, kOutput) << r.output;
  EXPECT_TRUE(contains(r.output, out)) << r.output;
  EXPECT_EQ(read_file(out), "precious\n");  // untouched
  EXPECT_EQ(list_files(base).size(), 1u) << "nothing else may appear beside it";
}

TEST(OutputFaults, OutdirBelowARegularFile) {
  const std::string base = test::temp_dir("fault_outfile2");
  write_file(base + "/file", "x");
  const std::string out = base + "/file/results";
  const Result r = lungvol(analyze(shared_input(), out));
  EXPECT_EQ(r.code, kOutput) << r.output;
  EXPECT_TRUE(contains(r.output, out)) << r.output;
  EXPECT_EQ(list_files(base).size(), 1u);
}

// The output folder is checked before the input is read: an unwritable folder is reported (exit
// 7) even for an input that would take minutes to analyze, here one that does not exist at all.
TEST(OutputFaults, OutdirIsCheckedBeforeTheAnalysis) {
  const std::string base = test::temp_dir("fault_outfirst");
  write_file(base + "/file", "x");
  const Result r = lungvol(analyze(base + "/no-such-scan", base + "/file/results"));
  EXPECT_EQ(r.code, kOutput) << r.output;
  EXPECT_TRUE(contains(r.output, base + "/file/results")) << r.output;
}

TEST(OutputFaults, OutdirUnderProc) {
  const std::string out = "/proc/lungvol-fault-test/out";
  const Result r = lungvol(analyze(shared_input(), out));
  EXPECT_EQ(r.code, kOutput) << r.output;
  EXPECT_TRUE(contains(r.output, out)) << r.output;
}

TEST(OutputFaults, ReadOnlyOutdir) {
  const std::string prefix = unprivileged_prefix();
  if (prefix.empty()) {
    GTEST_SKIP() << "running as root without a way to drop privileges (setpriv): root writes "
                    "into read-only folders, so this cannot be simulated here";
  }
  const std::string out = test::temp_dir("fault_readonly");
  fs::permissions(out, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  const Result r = lungvol(analyze(shared_input(), out), prefix);
  EXPECT_EQ(r.code, kOutput) << r.output;
  EXPECT_TRUE(contains(r.output, out)) << r.output;
  EXPECT_TRUE(list_files(out).empty());
}

// Runs analyze with its output on a full file system and copies what was left to `keep`.
// Returns false when a private tmpfs cannot be mounted here (no CAP_SYS_ADMIN / unshare).
bool run_on_small_tmpfs(int kib, const std::string& keep, Result& r) {
  const std::string base = test::temp_dir("fault_tmpfs");
  const std::string mnt = base + "/mnt";
  fs::create_directories(mnt);
  const std::string probe = "unshare -m sh -c \"mount -t tmpfs -o size=4k tmpfs '" + mnt + "'\"";
  if (test::run_command(probe, base + "/probe.log") != 0) return false;
  // The mount lives in a private namespace: inspect and copy the results inside it.
  const std::string script = base + "/run.sh";
  write_file(script, "mount -t tmpfs -o size=" + std::to_string(kib) + "k tmpfs '" + mnt +
                         "' || exit 99\n'" + test::lungvol_binary() + "' --threads 1 " +
                         analyze(shared_input(), mnt + "/out") + " > '" + base +
                         "/run.log' 2>&1\nrc=$?\nmkdir -p '" + keep + "'\ncp -a '" + mnt +
                         "/out/.' '" + keep + "/' 2>/dev/null\nexit $rc\n");
  r.code = test::run_command("unshare -m sh '" + script + "'");
  r.output = read_file(base + "/run.log");
  return r.code != 99;
}

TEST(OutputFaults, DiskFullLeavesOnlyCompleteFiles) {
  reference_outputs();
  std::size_t total = 0;
  for (const auto& [name, content] : reference_outputs()) total += content.size();
  int full_runs = 0, failed_runs = 0;
  // From a file system too small for anything to one that holds everything.
  for (int kib : {4, 16, 64, 128, 192, 224, 256, 320, 512}) {
    const std::string keep = test::temp_dir("fault_tmpfs_keep");
    Result r;
    if (!run_on_small_tmpfs(kib, keep, r)) {
      GTEST_SKIP() << "cannot mount a private tmpfs here (needs unshare + mount privileges); "
                      "FileSizeLimitLeavesOnlyCompleteFiles covers the same path with ulimit -f";
    }
    const std::string ctx = "tmpfs " + std::to_string(kib) + " KiB";
    SCOPED_TRACE(ctx);
    ASSERT_TRUE(r.code == 0 || r.code == kOutput) << r.code << ": " << r.output;
    std::printf("[ figures ] %s: exit %d, %zu complete file(s) kept\n", ctx.c_str(), r.code,
                list_files(keep).size());
    if (r.code == kOutput) {
      ++failed_runs;
      EXPECT_TRUE(contains(r.output, "No space left on device") || contains(r.output, "disk full"))
          << r.output;
      EXPECT_TRUE(contains(r.output, "/out/")) << "the message names the file: " << r.output;
    } else {
      ++full_runs;
      EXPECT_EQ(list_files(keep).size(), reference_outputs().size()) << r.output;
    }
    expect_only_complete_files(keep, ctx);
  }
  EXPECT_GT(failed_runs, 0) << "no size was small enough (outputs total " << total << " bytes)";
  EXPECT_GT(full_runs, 0);
}

TEST(OutputFaults, FileSizeLimitLeavesOnlyCompleteFiles) {
  // RLIMIT_FSIZE makes write() fail with EFBIG past the limit (SIGXFSZ ignored): the same code
  // path as a full disk, without mount privileges. dash counts in 512-byte blocks.
  int failed_runs = 0;
  for (int blocks : {1, 4, 16, 64, 256}) {
    const std::string out = test::temp_dir("fault_fsize");
    const Result r = lungvol(analyze(shared_input(), out),
                          "trap '' XFSZ; ulimit -f " + std::to_string(blocks) + ";");
    const std::string ctx = "ulimit -f " + std::to_string(blocks);
    SCOPED_TRACE(ctx);
    std::printf("[ figures ] %s: exit %d, %zu complete file(s) kept\n", ctx.c_str(), r.code,
                list_files(out).size());
    ASSERT_TRUE(r.code == 0 || r.code == kOutput) << r.code << ": " << r.output;
    if (r.code == kOutput) {
      ++failed_runs;
      EXPECT_TRUE(contains(r.output, out)) << "the message names the file: " << r.output;
    }
    expect_only_complete_files(out, ctx);
  }
  EXPECT_GT(failed_runs, 0);
}

}  // namespace
}  // namespace lungvol::faults
