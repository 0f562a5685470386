#include <exception>
#include <iostream>
#include <algorithm>
#include <map>
#include <vector>

#include "apps/command.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"
#include "core/version.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"

int main(int argc, char** argv) {
  using namespace lungvol;
  io::init_dcmtk();  // before anything parses DICOM: DCMTK's own log lines never reach stderr
  CLI::App app{"lungvol: chest CT lung and lesion volumetry for clinical trials"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(kSoftwareName) + " " + kSoftwareVersion);
  app::GlobalOptions global;
  app.add_option("--threads", global.threads, "worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", global.log_level, "debug, info, warn, error or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));

  std::map<CLI::App*, app::Action> actions;
  auto add = [&](app::Action (*factory)(CLI::App&, const app::GlobalOptions&)) {
    const auto before = app.get_subcommands({});
    app::Action action = factory(app, global);
    for (CLI::App* sub : app.get_subcommands({})) {
      if (std::find(before.begin(), before.end(), sub) == before.end()) actions[sub] = action;
    }
  };
  add(app::add_analyze_command);
  add(app::add_protocols_command);
  add(app::add_inspect_command);
  add(app::add_convert_command);
  add(app::add_phantom_command);
  add(app::add_batch_command);
  add(app::add_sweep_command);
  add(app::add_endpoint_command);
  add(app::add_export_command);
  add(app::add_report_command);
  add(app::add_register_command);
  add(app::add_deform_command);
  add(app::add_review_command);

  // A misspelt command: name the closest one (edit distance at most 2) instead of CLI11's
  // "A subcommand is required".
  int first = 1;  // the first word after the global options
  while (first < argc && argv[first][0] == '-') {
    const std::string opt = argv[first];
    first += (opt == "--threads" || opt == "--log-level") ? 2 : 1;
  }
  if (first < argc) {
    const std::string word = argv[first];
    std::string best;
    std::size_t best_d = 3;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      const std::string& name = sub->get_name();
      if (name == word) known = true;
      std::vector<std::size_t> row(name.size() + 1);
      for (std::size_t j = 0; j <= name.size(); ++j) row[j] = j;
      for (std::size_t i = 1; i <= word.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= name.size(); ++j) {
          const std::size_t up = row[j];
          row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (word[i - 1] == name[j - 1] ? 0 : 1)});
          diag = up;
        }
      }
      if (row[name.size()] < best_d) {
        best_d = row[name.size()];
        best = name;
      }
    }
    if (!known) {
      std::cerr << "lungvol: error: unknown command '" << word << "'"
                << (best.empty() ? std::string() : " (did you mean '" + best + "'?)")
                << "; `lungvol --help` lists the commands\n";
      return static_cast<int>(ExitCode::kUsage);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }
  log::set_level(log::level_from_string(global.log_level));
  io::set_itk_threads(set_thread_count(global.threads));
  try {
    for (CLI::App* sub : app.get_subcommands()) return actions.at(sub)();
  } catch (const Error& e) {
    std::cerr << "lungvol: error: " << e.what() << "\n";
    return e.exit_status();
  } catch (const std::bad_alloc&) {
    std::cerr << "lungvol: error: out of memory\n";
    return static_cast<int>(ExitCode::kProcessing);
  } catch (const std::exception& e) {
    std::cerr << "lungvol: error: " << e.what() << "\n";
    return static_cast<int>(ExitCode::kProcessing);
  }
  return 0;
}
