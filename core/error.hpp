#pragma once
#include <stdexcept>
#include <string>

namespace lungvol {

// Process exit codes; documented in docs/exit-codes.md. Libraries throw Error with one of
// these, only main() turns it into an exit status.
enum class ExitCode : int {
  kOk = 0,
  kUsage = 2,
  kInput = 3,       // input not found or unreadable
  kDicom = 4,       // no CT series, gap, inconsistent geometry, undecodable pixels
  kProtocol = 5,    // protocol file missing or invalid
  kProcessing = 6,  // segmentation / measurement could not produce a trustworthy result
  kOutput = 7,      // output could not be written
  kBatchFailures = 8,
  kInterrupted = 130,  // Ctrl-C / SIGTERM: stopped cleanly, re-run to resume (128 + SIGINT)
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }
  int exit_status() const { return static_cast<int>(code_); }

 private:
  ExitCode code_;
};

const char* exit_code_name(ExitCode code);

}  // namespace lungvol
