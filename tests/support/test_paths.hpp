#pragma once
// Where tests find real data (../shared), the source tree and the built lungvol binary.
#include <string>

#include <gtest/gtest.h>

namespace lungvol::test {

// ../shared beside the repository, or $LUNGVOL_SHARED_DIR when set (the folder that holds
// data/ and reference/).
std::string shared_dir();
std::string shared_data(const std::string& rel);  // <shared>/data/<rel>
std::string source_dir();
std::string lungvol_binary();
// A fresh, empty temporary directory for one test (removed at process exit is not required).
std::string temp_dir(const std::string& tag);
// Runs a command line, returns its exit status; output goes to `log_path` if given.
int run_command(const std::string& command, const std::string& log_path = "");

// Empty when <shared>/<rel> exists; otherwise one line naming the missing path and the
// environment variable that points the suite at the data.
std::string missing_shared(const std::string& rel);
// True when LUNGVOL_REQUIRE_SHARED=1: missing shared data fails the test instead of skipping
// it (CI, where the data must be present).
bool shared_required();

}  // namespace lungvol::test

// First line of a test (or of SetUpTestSuite) that reads ../shared: without the data the test
// is skipped with one clear line (or fails under LUNGVOL_REQUIRE_SHARED=1).
// LUNGVOL_REQUIRE_SHARED("reference/wilcoxon_hl_r.json"), LUNGVOL_REQUIRE_DATA("popi-.../dicom").
#define LUNGVOL_REQUIRE_SHARED(rel)                                                   \
  do {                                                                                \
    const std::string lungvol_missing_ = ::lungvol::test::missing_shared(rel);        \
    if (!lungvol_missing_.empty()) {                                                  \
      if (::lungvol::test::shared_required()) FAIL() << lungvol_missing_;             \
      GTEST_SKIP() << lungvol_missing_;                                               \
    }                                                                                 \
  } while (0)
#define LUNGVOL_REQUIRE_DATA(rel) LUNGVOL_REQUIRE_SHARED(std::string("data/") + (rel))
