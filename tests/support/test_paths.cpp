#include "tests/support/test_paths.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace lungvol::test {

std::string shared_dir() {
  if (const char* env = std::getenv("LUNGVOL_SHARED_DIR")) return env;
  return LUNGVOL_SHARED_DIR;
}
std::string shared_data(const std::string& rel) { return shared_dir() + "/data/" + rel; }
std::string source_dir() { return LUNGVOL_SOURCE_DIR; }
std::string lungvol_binary() { return LUNGVOL_BINARY; }

std::string temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path p = fs::temp_directory_path() /
               ("lungvol_test_" + tag + "_" + std::to_string(::getpid()) + "_" +
                std::to_string(counter++));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string missing_shared(const std::string& rel) {
  const fs::path p = fs::path(shared_dir()) / rel;
  std::error_code ec;
  if (fs::exists(p, ec)) return {};
  return "shared test data not found: " + p.string() +
         " (set LUNGVOL_SHARED_DIR to the folder holding data/ and reference/; default " +
         LUNGVOL_SHARED_DIR + ")";
}

bool shared_required() {
  const char* env = std::getenv("LUNGVOL_REQUIRE_SHARED");
  return env && std::string(env) == "1";
}

int run_command(const std::string& command, const std::string& log_path) {
  std::string cmd = command;
  if (!log_path.empty()) cmd += " > '" + log_path + "' 2>&1";
  const int status = std::system(cmd.c_str());
  if (status == -1) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace lungvol::test
