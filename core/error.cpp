#include "core/error.hpp"

namespace lungvol {

const char* exit_code_name(ExitCode code) {
  switch (code) {
    case ExitCode::kOk: return "ok";
    case ExitCode::kUsage: return "usage";
    case ExitCode::kInput: return "input";
    case ExitCode::kDicom: return "dicom";
    case ExitCode::kProtocol: return "protocol";
    case ExitCode::kProcessing: return "processing";
    case ExitCode::kOutput: return "output";
    case ExitCode::kBatchFailures: return "batch_failures";
    case ExitCode::kInterrupted: return "interrupted";
  }
  return "unknown";
}

}  // namespace lungvol
