#pragma once
// Where tests find real data (../shared), the source tree and the built lungvol binary.
#include <string>

namespace lungvol::test {

std::string shared_dir();                        // ../shared beside the repository
std::string shared_data(const std::string& rel);  // ../shared/data/<rel>
std::string source_dir();
std::string lungvol_binary();
// A fresh, empty temporary directory for one test (removed at process exit is not required).
std::string temp_dir(const std::string& tag);
// Runs a command line, returns its exit status; output goes to `log_path` if given.
int run_command(const std::string& command, const std::string& log_path = "");

}  // namespace lungvol::test
