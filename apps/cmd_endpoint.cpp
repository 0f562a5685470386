#include <iostream>
#include <memory>
#include <sstream>

#include "apps/command.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "batch/derived.hpp"
#include "trial/endpoint.hpp"

namespace lungvol::app {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(' ');
    const auto e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

// A table visit the schedule does not know would be dropped from every result: refused.
void check_visits_in_schedule_or_refuse(const trial::VisitTable& table,
                                        const trial::VisitSchedule& schedule,
                                        const std::string& schedule_path) {
  batch::check_visits_in_schedule(
      table, schedule,
      schedule_path.empty() ? "the default schedule (give yours with --schedule)" : schedule_path);
}

}  // namespace

Action add_endpoint_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "endpoint",
      "trial endpoints: change from baseline (mITT with LOCF, per protocol), arm comparison "
      "by Wilcoxon rank-sum and Hodges-Lehmann, computed as R 4.2.2's wilcox.test(x, y, "
      "conf.int = TRUE, digits.rank = 10) (see --digits-rank); writes <dir>/endpoint/"
      "{changes.csv, comparison.csv, table2.md}");
  struct Options {
    std::string outdir, table, output, arms, schedule, endpoints, digits_rank = "10";
    bool normal = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("OUTDIR", o->outdir,
                  "batch output folder: the visits are read from its results.sqlite (the table "
                  "visits_wide.csv holds), with the visit schedule the batch ran with");
  cmd->add_option("--table", o->table,
                  "any visit table CSV (subject_id, arm, visit, metric columns) instead of OUTDIR");
  cmd->add_option("-o,--output", o->output,
                  "results go to <dir>/endpoint (required with --table; with OUTDIR default "
                  "OUTDIR, e.g. for a batch on read-only storage)");
  cmd->add_option("--arms", o->arms, "A,B: report A minus B (default: the two arms, sorted)");
  cmd->add_option("--schedule", o->schedule,
                  "visit schedule TOML ([[visit]] name, day, baseline, window_days); default: "
                  "with OUTDIR the schedule the batch ran with, with --table baseline day 0, "
                  "day10, day28");
  cmd->add_option("--endpoints", o->endpoints,
                  "comma-separated metric columns (default: lesion_pct, ggo_pct, solid_pct and "
                  "every other numeric column)");
  cmd->add_flag("--normal", o->normal,
                "normal approximation with continuity correction throughout (R exact = FALSE)");
  cmd->add_option("--digits-rank", o->digits_rank,
                  "ties: rank the changes after rounding to N significant digits, as R's "
                  "wilcox.test(x, y, conf.int = TRUE, digits.rank = N); default 10 (values equal "
                  "but for floating-point noise tie); 'inf' = no rounding, R's default "
                  "wilcox.test(x, y, conf.int = TRUE)")
      ->capture_default_str();
  return [o]() {
    using trial::EndpointOptions;
    if (o->outdir.empty() == o->table.empty()) {
      throw Error(ExitCode::kUsage, "endpoint: give either OUTDIR or --table FILE -o DIR");
    }
    if (!o->table.empty() && o->output.empty()) {
      throw Error(ExitCode::kUsage, "endpoint: --table needs -o DIR for the results");
    }
    if (!o->outdir.empty()) {
      // A batch folder: what its store holds, never a CSV that may be older than it.
      batch::BatchEndpointOptions bo;
      bo.outdir = o->outdir;
      bo.out_dir = o->output.empty() ? "" : o->output + "/endpoint";
      bo.schedule = o->schedule;
      bo.arms = o->arms;
      bo.endpoints = o->endpoints;
      bo.normal = o->normal;
      const batch::BatchEndpointRun run = batch::run_batch_endpoint(bo);
      for (const auto& n : run.notes) std::cerr << "lungvol endpoint: " << n << "\n";
      for (const auto& w : run.result.warnings) log::warn("{}", w);
      std::cout << trial::table2_markdown(run.result) << "\n"
                << batch::provenance_sentence(run.state) << "\n";
      std::cerr << "lungvol endpoint: wrote " << run.out_dir
                << "/{changes.csv, comparison.csv, table2.md, provenance.json} from results state "
                << run.state.results_state.substr(0, 16) << "\n";
      return 0;
    }
    const std::string table_path = o->table;
    const std::string out_dir = o->output + "/endpoint";
    const trial::VisitTable table = trial::read_visit_table(table_path);
    const trial::VisitSchedule schedule = o->schedule.empty()
                                              ? trial::default_visit_schedule()
                                              : trial::load_visit_schedule(o->schedule);
    EndpointOptions options;
    if (!o->arms.empty()) {
      const auto arms = split_list(o->arms);
      if (arms.size() != 2) throw Error(ExitCode::kUsage, "endpoint: --arms wants two names, A,B");
      options.arm_a = arms[0];
      options.arm_b = arms[1];
    } else {
      const auto arms = trial::arms_in(table);
      if (arms.size() != 2) {
        std::string list;
        for (const auto& a : arms) list += (list.empty() ? "" : ", ") + a;
        throw Error(ExitCode::kUsage, table_path + " has " + std::to_string(arms.size()) +
                                          " arms (" + list + "); choose two with --arms A,B");
      }
      options.arm_a = arms[0];
      options.arm_b = arms[1];
      std::cerr << "lungvol endpoint: comparing arms " << arms[0] << " minus " << arms[1]
                << " (sorted order; use --arms to choose)\n";
    }
    if (!o->endpoints.empty()) options.endpoints = trial::endpoints_for(table, split_list(o->endpoints));
    if (o->normal) options.wilcoxon.allow_exact = false;
    options.wilcoxon.digits_rank = trial::parse_digits_rank(o->digits_rank);
    check_visits_in_schedule_or_refuse(table, schedule, o->schedule);

    const trial::EndpointResult result = trial::run_endpoints(table, schedule, options);
    for (const auto& w : result.warnings) log::warn("{}", w);
    trial::write_endpoint_outputs(result, out_dir);
    std::cout << trial::table2_markdown(result);
    std::cerr << "lungvol endpoint: wrote " << out_dir << "/{changes.csv, comparison.csv, table2.md}\n";
    return 0;
  };
}

}  // namespace lungvol::app
