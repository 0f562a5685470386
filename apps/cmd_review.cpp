#include <iostream>
#include <memory>

#include "apps/command.hpp"
#include "batch/derived.hpp"
#include "batch/review.hpp"
#include "batch/store.hpp"
#include "core/error.hpp"

namespace lungvol::app {

Action add_review_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "review",
      "record a reader's decision on a scan of a batch (accept, exclude with a reason, or correct "
      "with masks to re-measure), show the review status, or lock a fully reviewed batch");
  struct Options {
    std::string outdir, subject, visit, exclude, lungs_mask, lesions_mask, reader, note;
    bool accept = false, lock = false, unlock = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("OUTDIR", o->outdir, "batch output folder (holds results.sqlite)")->required();
  cmd->add_option("SUBJECT", o->subject, "subject_id of the scan");
  cmd->add_option("VISIT", o->visit, "visit of the scan");
  auto* accept = cmd->add_flag("--accept", o->accept, "the segmentation and numbers are fine");
  auto* exclude = cmd->add_option("--exclude", o->exclude,
                                  "REASON: the scan is excluded from the endpoints (missing: LOCF "
                                  "in mITT, absent in PP)");
  auto* lungs = cmd->add_option("--lungs-mask", o->lungs_mask,
                                "corrected lung label map (0 background, 1 right, 2 left, 3 "
                                "airway; NIfTI / NRRD / MHA on the scan's grid): the next `lungvol "
                                "batch` re-measures the scan with it");
  cmd->add_option("--lesions-mask", o->lesions_mask,
                  "corrected lesion mask (with --lungs-mask): binary, or 1 ground glass / 2 solid");
  cmd->add_option("--reader", o->reader, "who decides (default: the login name)");
  cmd->add_option("--note", o->note, "a note kept with an accept or a correction");
  auto* lock = cmd->add_flag("--lock", o->lock,
                             "lock the batch once every scan has a valid decision (endpoint and "
                             "export then state that they ran on a locked, fully reviewed batch)");
  auto* unlock = cmd->add_flag("--unlock", o->unlock, "remove the lock (to change a decision)");
  accept->excludes(exclude)->excludes(lungs)->excludes(lock)->excludes(unlock);
  exclude->excludes(lungs)->excludes(lock)->excludes(unlock);
  lungs->excludes(lock)->excludes(unlock);
  lock->excludes(unlock);
  cmd->footer(
      "Without a decision: prints every scan's decision and the lock status.\n"
      "Examples:\n"
      "  lungvol review results S01 day10 --accept --reader 'Dr A'\n"
      "  lungvol review results S05 day10 --exclude 'motion, lungs not assessable'\n"
      "  lungvol review results S03 day28 --lungs-mask S03_day28_lungs.nii.gz\n"
      "  lungvol review results --lock --reader 'Dr A'");
  return [o]() {
    const bool decision = o->accept || !o->exclude.empty() || !o->lungs_mask.empty();
    if ((o->lock || o->unlock) && (!o->subject.empty() || !o->visit.empty())) {
      throw Error(ExitCode::kUsage, "review: --lock / --unlock take only OUTDIR");
    }
    if (o->lock) {
      const batch::ReviewLock l = batch::lock_review(o->outdir, o->reader);
      std::cout << "locked " << o->outdir << " at " << l.locked_at << " by " << l.locked_by
                << " (results state " << l.state.substr(0, 16) << ")\n";
      return 0;
    }
    if (o->unlock) {
      batch::unlock_review(o->outdir);
      std::cout << "unlocked " << o->outdir << "\n";
      return 0;
    }
    if (decision) {
      if (o->subject.empty() || o->visit.empty()) {
        throw Error(ExitCode::kUsage, "review: a decision needs SUBJECT and VISIT");
      }
      batch::ReviewRequest q;
      q.outdir = o->outdir;
      q.subject = o->subject;
      q.visit = o->visit;
      q.decision = o->accept ? "accepted" : !o->exclude.empty() ? "excluded" : "corrected";
      q.reason = o->exclude.empty() ? o->note : o->exclude;
      q.lungs_mask = o->lungs_mask;
      q.lesions_mask = o->lesions_mask;
      q.reader = o->reader;
      const batch::ReviewDecision d = batch::record_review(q);
      std::cout << d.subject_id << " " << d.visit << ": " << d.decision << " by " << d.reader
                << " at " << d.decided_at;
      if (!d.reason.empty()) std::cout << " (" << d.reason << ")";
      std::cout << "\n";
      if (d.decision == "corrected") {
        std::cout << "run `lungvol batch` with the same manifest and -o " << o->outdir
                  << " to re-measure it with the given masks\n";
      }
      return 0;
    }
    if (!o->subject.empty()) {
      throw Error(ExitCode::kUsage, "review: give a decision: --accept, --exclude REASON or "
                                    "--lungs-mask FILE (see lungvol review --help)");
    }
    batch::Store store(batch::results_store_path(o->outdir), batch::Store::Mode::kReadOnly);
    const batch::ReviewStatus st = batch::review_status(store);
    std::cout << "subject_id\tvisit\tdecision\tstate\treader\tdecided_at\treason\n";
    for (const auto& s : st.scans) {
      const auto& d = s.decision;
      std::cout << s.subject_id << "\t" << s.visit << "\t" << (d ? d->decision : "-") << "\t"
                << batch::decision_state_name(s.state) << "\t" << (d ? d->reader : "") << "\t"
                << (d ? d->decided_at : "") << "\t" << (d ? d->reason : "") << "\n";
    }
    std::cout << st.sentence() << "\n";
    return 0;
  };
}

}  // namespace lungvol::app
