#pragma once
// Each subcommand lives in its own thin cmd_*.cpp: it declares its options on a CLI11
// subcommand and returns the function that runs it (returning the process exit status).
#include <functional>

#include <CLI/CLI.hpp>

namespace lungvol::app {

struct GlobalOptions {
  int threads = 0;  // 0 = all cores
  std::string log_level = "info";
};

using Action = std::function<int()>;

Action add_protocols_command(CLI::App& app, const GlobalOptions& global);
Action add_inspect_command(CLI::App& app, const GlobalOptions& global);
Action add_convert_command(CLI::App& app, const GlobalOptions& global);
Action add_phantom_command(CLI::App& app, const GlobalOptions& global);
Action add_analyze_command(CLI::App& app, const GlobalOptions& global);
Action add_batch_command(CLI::App& app, const GlobalOptions& global);
Action add_endpoint_command(CLI::App& app, const GlobalOptions& global);
Action add_sweep_command(CLI::App& app, const GlobalOptions& global);
Action add_export_command(CLI::App& app, const GlobalOptions& global);
Action add_report_command(CLI::App& app, const GlobalOptions& global);
Action add_register_command(CLI::App& app, const GlobalOptions& global);
Action add_deform_command(CLI::App& app, const GlobalOptions& global);
Action add_review_command(CLI::App& app, const GlobalOptions& global);

}  // namespace lungvol::app
