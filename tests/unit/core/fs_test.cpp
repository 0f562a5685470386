#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol {

TEST(AtomicWrite, FailedWriterLeavesNoFile) {
  const std::string dir = test::temp_dir("atomic");
  const std::string path = dir + "/out.csv";
  EXPECT_THROW(write_stream_atomic(path,
                                   [](std::ostream& o) {
                                     o << "half a row";
                                     throw std::runtime_error("boom");
                                   }),
               std::runtime_error);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(dir));  // no temporary left behind either
  write_text_atomic(path, "a,b\n");
  EXPECT_EQ(read_text_file(path), "a,b\n");
}

TEST(AtomicWrite, UnwritableDirectoryIsAnOutputError) {
  try {
    ensure_directory("/proc/lungvol_cannot_exist");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kOutput);
  }
}

}  // namespace lungvol
