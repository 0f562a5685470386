#pragma once
// The registration step of a batch (docs/batch.md, "Registration"): after the scans, every
// subject's follow-ups are registered to its baseline (registration/followup.hpp) into
// OUTDIR/registrations/<subject>/<visit>/ and stored in results.sqlite. Resumable like the scans:
// a follow-up whose stored registration has the same key (both scans' identities, the parameters,
// the software) is not registered again, and a subject whose cross-visit key is unchanged is not
// touched. The Slurm executor runs the same step as one array task per subject
// (batch/slurm.hpp, run_registration_task).
#include <string>
#include <vector>

#include "batch/runner.hpp"
#include "batch/store.hpp"
#include "registration/followup.hpp"

namespace lungvol::batch {

// The settings every batch registration uses (the defaults of registration/, the protocol's
// lesion band as "dense" for the mask consistency).
registration::FollowupSettings registration_settings(const Protocol& protocol, bool write_qc_images);

// One subject's registration work, planned from the store.
struct SubjectPlan {
  registration::SubjectJob job;
  bool needed = false;  // something to register, or the cross-visit key changed
};

// The visit as the registration sees it, from its stored scan row and measurements.
registration::VisitScan visit_scan(Store& store, const ScanRecord& scan);

// Plans every manifest subject with an analyzed baseline. With `prune`, stale registrations of
// follow-ups that are no longer analyzed, or of subjects without a baseline, are removed from the
// store; a Slurm registration task plans on a read-only store and leaves that to its merge.
std::vector<SubjectPlan> plan_registrations(Store& store, const trial::VisitSchedule& schedule,
                                            const std::string& outdir,
                                            const registration::FollowupSettings& settings,
                                            bool force, bool prune = true);

struct RegistrationCounts {
  std::size_t subjects = 0, registered = 0, failed = 0, skipped = 0;
};
// Stores a subject's outcome: every follow-up registered now (ok or failed) and the subject's
// cross-visit row with its consistency rows.
void store_subject_outcome(Store& store, const registration::SubjectJob& job,
                           const registration::SubjectOutcome& outcome, std::int64_t run_id,
                           RegistrationCounts* counts);

// The local executor's registration step: plans, runs the subjects that need it on `jobs`
// workers (each with `threads_per_job` OpenMP threads), stores them. Skipped (with a warning)
// when the batch writes no label maps. Interruption propagates (Error(kInterrupted)).
RegistrationCounts run_registrations(Store& store, const BatchInputs& inputs,
                                     const BatchOptions& options, int jobs, int threads_per_job,
                                     std::int64_t run_id);

}  // namespace lungvol::batch
