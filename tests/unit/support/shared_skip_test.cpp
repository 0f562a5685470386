// A clone without ../shared: every test that reads real data or the shared R reference file is
// skipped with one line naming the missing file and LUNGVOL_SHARED_DIR, and the programs exit 0.
// LUNGVOL_REQUIRE_SHARED=1 (CI) turns the same situation into failures.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/test_paths.hpp"

namespace lungvol::test {
namespace {

struct DataProgram {
  const char* binary;
  const char* filter;  // the data-dependent tests of that program
  int n_tests;         // how many tests the filter selects
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The child's output for a failure message, with gtest's skip marker defused: ctest takes a
// "[  SKIPPED ]" anywhere in a test's output for a skip, and would hide this test's failure.
std::string shown(std::string out) {
  for (std::size_t at; (at = out.find("[  SKIPPED ]")) != std::string::npos;) {
    out.replace(at, 12, "[ skipped ]");
  }
  return out;
}

// gtest's "Running N tests" line.
int tests_run(const std::string& out) {
  const std::size_t at = out.find("] Running ");
  return at == std::string::npos ? -1 : std::atoi(out.c_str() + at + 10);
}

const DataProgram kPrograms[] = {
    {IO_DICOM_DATA_TEST, "*", 38},
    {IO_CLI_TEST, "IoCli.InspectEveryDataFolderWithoutCrash:IoCli.ConvertCipDicomMatchesNrrd", 2},
    {IO_IMAGE_TEST, "ImageIoData.*", 1},
    {CALIBRATION_DATA_TEST, "*", 2},
    {LIDC_DATA_TEST, "*", 1},
    {PIPELINE_DATA_TEST, "*", 2},
    {ANALYZE_CLI_TEST,
     "AnalyzeCli.CipDicomWritesEveryOutputWithTheDesignSchema:AnalyzeCli.GivenLungsMaskIsMeasured"
     "AsGiven:AnalyzeCli.OwnSegGivenBackAsMasksReproducesTheVolumes:AnalyzeCli.MaskOnAnotherGrid"
     "IsResampledOrRefused",
     4},
    {SEGMENTATION_DATA_TEST, "*", 1},
    {REPORT_DATA_TEST, "QcImagesData.*", 1},
    {TRIAL_TEST, "WilcoxonR.*:MedianCI.MatchesReferenceIncludingNulls", 6},
    {REGISTRATION_DATA_TEST, "*", 3},
    // The stress suite's families and clean controls (the phantom severity series needs no data).
    {FAMILIES_DATA_TEST, "StressSuite.*:StressSuiteClean.*", 7},
};

int run(const DataProgram& p, const std::string& empty, bool require, const std::string& log) {
  return run_command("LUNGVOL_SHARED_DIR='" + empty + "' LUNGVOL_REQUIRE_SHARED=" +
                         (require ? "1" : "0") + " '" + p.binary + "' --gtest_filter='" +
                         p.filter + "'",
                     log);
}

TEST(SharedData, MissingDataSkipsWithOneLineNamingTheVariable) {
  const std::string dir = temp_dir("no_shared");
  const std::string empty = dir + "/empty";
  std::filesystem::create_directories(empty);
  for (const auto& p : kPrograms) {
    const std::string log = dir + "/skip.log";
    EXPECT_EQ(run(p, empty, false, log), 0) << p.binary << ":\n" << shown(slurp(log));
    const std::string out = slurp(log);
    EXPECT_EQ(tests_run(out), p.n_tests) << p.binary << ":\n" << shown(out);
    EXPECT_EQ(out.find("[  FAILED  ]"), std::string::npos) << p.binary << ":\n" << shown(out);
    // Each skipped test says which file is missing and how to point the suite elsewhere.
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = out.find("shared test data not found: " + empty + "/", at)) !=
                             std::string::npos;
         ++at) {
      ++lines;
      const std::size_t eol = out.find('\n', at);
      EXPECT_NE(out.substr(at, eol - at).find("set LUNGVOL_SHARED_DIR"), std::string::npos);
    }
    EXPECT_EQ(lines, std::size_t(p.n_tests)) << p.binary << ":\n" << shown(out);
    EXPECT_NE(out.find("[  SKIPPED ] " + std::to_string(p.n_tests) + " test"), std::string::npos)
        << p.binary << ":\n" << shown(out);
  }
}

TEST(SharedData, RequiredDataFailsInsteadOfSkipping) {
  const std::string dir = temp_dir("no_shared_required");
  const std::string empty = dir + "/empty";
  std::filesystem::create_directories(empty);
  const std::string log = dir + "/req.log";
  EXPECT_NE(run(kPrograms[2], empty, true, log), 0);
  EXPECT_NE(slurp(log).find("shared test data not found: " + empty +
                            "/data/cip-chest-imaging-platform/ct-64.nrrd"),
            std::string::npos)
      << shown(slurp(log));
}

}  // namespace
}  // namespace lungvol::test
