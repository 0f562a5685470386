#include <iostream>
#include <memory>

#include "apps/command.hpp"
#include "core/error.hpp"
#include "export/outdir.hpp"

namespace lungvol::app {

Action add_export_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "export",
      "spreadsheet of a batch output folder: sheets visits (visits_wide.csv), changes and "
      "comparison (endpoint/), provenance (results.sqlite runs, else measurements.csv)");
  struct Options {
    std::string outdir, xlsx;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("OUTDIR", o->outdir, "batch output folder (after 'lungvol endpoint OUTDIR')")
      ->required();
  cmd->add_option("--xlsx", o->xlsx, "Excel workbook to write (written atomically)")->required();
  return [o]() {
    const xlsx::ExportSummary s = xlsx::export_outdir(o->outdir, o->xlsx);
    std::cerr << "lungvol export: wrote " << o->xlsx << " (";
    for (std::size_t i = 0; i < s.sheets.size(); ++i) {
      std::cerr << (i ? ", " : "") << s.sheets[i] << " " << s.rows[i] << " rows";
    }
    std::cerr << "; provenance from " << s.provenance_source << ")\n";
    return 0;
  };
}

}  // namespace lungvol::app
