// The Slurm executor without Slurm: sbatch/squeue replaced by small shell scripts, the array
// tasks and the merge run in-process, and the merged store compared with a local batch's on a
// tiny phantom cohort (3 scans of 64 x 64 x 24 voxels + one corrupt file).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "batch/slurm.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "phantom/phantom.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch::slurm {
namespace {

TEST(SlurmParse, JobIdFromSbatchParsable) {
  EXPECT_EQ(parse_job_id("12345\n"), "12345");
  EXPECT_EQ(parse_job_id("12345;cluster2\n"), "12345");
  EXPECT_EQ(parse_job_id("sbatch: warning: no --time given\n678\n"), "678");
  try {
    parse_job_id("sbatch: error: Batch job submission failed: Invalid partition name\n");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kOutput);
    EXPECT_NE(std::string(e.what()).find("Invalid partition name"), std::string::npos);
  }
  EXPECT_THROW(parse_job_id(""), Error);
}

TEST(SlurmParse, SqueueLinesMapToTaskIndices) {
  const std::vector<ArrayJob> arrays{{"100", 0, 2}, {"200", 1000, 5}};
  std::map<std::string, std::string> others;
  const auto t = parse_squeue(
      "100|0|RUNNING\n100|1|PENDING\n101|N/A|PENDING\n200|3|RUNNING\n200|7|RUNNING\n"
      "999|0|RUNNING\ngarbage\n",
      arrays, &others);
  const std::map<std::size_t, std::string> expected{{0, "RUNNING"}, {1, "PENDING"}, {1003, "RUNNING"}};
  EXPECT_EQ(t, expected);  // 200|7 is outside that array's 5 tasks
  EXPECT_EQ(others.at("101"), "PENDING");
  EXPECT_EQ(others.at("999"), "RUNNING");
}

TEST(SlurmScripts, SbatchArgumentsAndShellQuoting) {
  SlurmOptions s;
  s.partition = "short";
  s.array_limit = 3;
  s.sbatch_args = {"--time=01:00:00", "--mem=4G"};
  const std::vector<std::string> a = array_sbatch_args(s, "/o", ArrayJob{"", 1000, 5}, 4);
  const std::vector<std::string> expected_a{
      "--parsable",         "--array=0-4%3",   "--job-name=lungvol-batch",
      "--output=/o/slurm/logs/task-%A_%a.log", "--cpus-per-task=4",
      "--partition=short",  "--time=01:00:00", "--mem=4G",
      "/o/slurm/task.sbatch", "1000"};
  EXPECT_EQ(a, expected_a);
  const auto m = merge_sbatch_args(SlurmOptions{}, "/o/", {{"100", 0, 2}, {"200", 2, 1}});
  const std::vector<std::string> expected_m{"--parsable", "--dependency=afterany:100:200",
                                            "--job-name=lungvol-merge",
                                            "--output=/o/slurm/logs/merge-%j.log",
                                            "/o/slurm/merge.sbatch"};
  EXPECT_EQ(m, expected_m);
  EXPECT_EQ(shell_quote("a'b c"), "'a'\\''b c'");
}

// The task script really run by bash, with echo standing in for lungvol: the task index is
// the array's offset plus SLURM_ARRAY_TASK_ID, and a path with a space and a quote survives.
TEST(SlurmScripts, TaskScriptComputesTheIndexInBash) {
  const std::string dir = test::temp_dir("slurm_script");
  const std::string out = dir + "/it's out";
  write_text_atomic(dir + "/task.sbatch", task_script("/bin/echo", out));
  const int rc = test::run_command("SLURM_ARRAY_TASK_ID=7 SLURM_CPUS_PER_TASK=2 bash '" + dir +
                                       "/task.sbatch' 1000",
                                   dir + "/out.txt");
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(read_text_file(dir + "/out.txt"),
            "--threads 2 batch --slurm-task 1007 -o " + out + "\n");
  // Without --cpus-per-task: the CPUs of the allocation on the node.
  ASSERT_EQ(test::run_command("env -u SLURM_CPUS_PER_TASK SLURM_ARRAY_TASK_ID=0 "
                              "SLURM_CPUS_ON_NODE=3 bash '" + dir + "/task.sbatch' 0",
                              dir + "/out2.txt"),
            0);
  EXPECT_EQ(read_text_file(dir + "/out2.txt"),
            "--threads 3 batch --slurm-task 0 -o " + out + "\n");
  write_text_atomic(dir + "/merge.sbatch", merge_script("/bin/echo", out));
  ASSERT_EQ(test::run_command("bash '" + dir + "/merge.sbatch'", dir + "/merge.txt"), 0);
  EXPECT_EQ(read_text_file(dir + "/merge.txt"), "batch --slurm-merge -o " + out + "\n");
  // The registration array: one task per subject, its index the array index.
  write_text_atomic(dir + "/register.sbatch", registration_task_script("/bin/echo", out));
  ASSERT_EQ(test::run_command("SLURM_ARRAY_TASK_ID=012 SLURM_CPUS_PER_TASK=2 bash '" + dir +
                                  "/register.sbatch'",
                              dir + "/register.txt"),
            0);
  EXPECT_EQ(read_text_file(dir + "/register.txt"),
            "--threads 2 batch --slurm-register-task 12 -o " + out + "\n");
  EXPECT_NE(test::run_command("SLURM_ARRAY_TASK_ID='1;x' bash '" + dir + "/register.sbatch'",
                              dir + "/register_bad.txt"),
            0);
  write_text_atomic(dir + "/register-merge.sbatch", registration_merge_script("/bin/echo", out));
  ASSERT_EQ(test::run_command("bash '" + dir + "/register-merge.sbatch'", dir + "/rmerge.txt"), 0);
  EXPECT_EQ(read_text_file(dir + "/rmerge.txt"), "batch --slurm-register-merge -o " + out + "\n");
}

void make_executable(const std::string& path, const std::string& text) {
  write_text_atomic(path, text);
  fs::permissions(path, fs::perms::owner_all);
}

struct Cohort {
  std::string dir, manifest;
};

const Cohort& cohort() {
  static const Cohort c = [] {
    Cohort c;
    c.dir = test::temp_dir("slurm_cohort");
    const struct {
      const char* name;
      int seed;
      double scale;
      const char* date;
    } scans[] = {{"S01_baseline", 1, 1.5, "20200301"},
                 {"S01_day10", 1, 1.0, "20200311"},
                 {"S02_baseline", 2, 1.5, "20200302"}};
    for (const auto& s : scans) {
      phantom::PhantomOptions o;
      o.seed = static_cast<std::uint64_t>(s.seed);
      o.size = {64, 64, 24};
      o.spacing = {2.7, 2.7, 6.5};
      o.lesion_scale = s.scale;
      io::CtSeriesMeta meta;
      meta.study_date = s.date;
      phantom::write_phantom(phantom::make_phantom(o), c.dir + "/" + s.name, meta);
    }
    write_text_atomic(c.dir + "/corrupt.nii.gz", "not a NIfTI file\n");
    c.manifest = c.dir + "/manifest.csv";
    write_text_atomic(c.manifest,
                      "subject_id,arm,visit,path\n"
                      "S01,A,baseline,S01_baseline/dicom\n"
                      "S01,A,day10,S01_day10/dicom\n"
                      "S02,B,baseline,S02_baseline/dicom\n"
                      "S02,B,day10,corrupt.nii.gz\n");
    return c;
  }();
  return c;
}

BatchOptions options(const std::string& outdir) {
  BatchOptions o;
  o.manifest = cohort().manifest;
  o.outdir = outdir;
  o.threads = 2;
  o.write_label_maps = false;
  o.write_qc_images = false;
  o.progress_tty = 0;
  return o;
}

// Stand-ins: sbatch logs its arguments and prints ids 5001, 5002, ...; squeue prints the
// content of a file the test controls.
SlurmOptions fake_slurm(const std::string& dir) {
  SlurmOptions s;
  s.sbatch = dir + "/sbatch";
  s.squeue = dir + "/squeue";
  s.lungvol_binary = "/opt/lungvol/bin/lungvol";
  make_executable(s.sbatch,
                  "#!/bin/sh\necho \"$*\" >> '" + dir + "/sbatch.log'\n"
                  "echo $((5000 + $(wc -l < '" + dir + "/sbatch.log')))\n");
  write_text_atomic(dir + "/queue.txt", "");
  make_executable(s.squeue, "#!/bin/sh\ncat '" + dir + "/queue.txt'\n");
  return s;
}

// Every value the cohort analysis produces, keyed without ids, times or paths.
std::map<std::string, std::string> content(Store& store) {
  std::map<std::string, std::string> out;
  std::map<std::int64_t, std::string> key_of;
  for (const auto& s : store.scans()) {
    const std::string key = s.subject_id + "/" + s.visit;
    key_of[s.scan_id] = key;
    out[key + " scan"] = s.arm + "|" + s.status + "|" + s.series_uid + "|" + s.input_sha256 +
                         "|" + s.study_date + "|" + s.protocol_sha256 + "|" + s.warnings + "|" +
                         s.error + "|" + std::to_string(s.voxel_ml) + "|" +
                         (s.days_from_baseline ? std::to_string(*s.days_from_baseline) : "NA");
    for (const auto& m : store.measurements(s.scan_id)) {
      char v[64];
      std::snprintf(v, sizeof v, "%.17g", m.value ? *m.value : -12345.0);
      out[key + " " + m.region + " " + m.metric] = std::string(v) + " " + m.unit;
    }
  }
  for (const auto& h : store.histograms("lungs")) {
    std::string counts;
    for (auto c : h.histogram.counts) counts += std::to_string(c) + ",";
    out["histogram " + key_of[h.scan_id] + " " + h.kind] = counts;
  }
  return out;
}

TEST(SlurmExecutor, TasksPlusMergeGiveTheLocalBatchStore) {
  const std::string dir = test::temp_dir("slurm_e2e");
  const BatchSummary local = run_batch(options(dir + "/local"));
  ASSERT_EQ(local.counts.analyzed, 3u);
  ASSERT_EQ(local.counts.failed, 1u);

  const SlurmOptions slurm = fake_slurm(dir);
  const std::string out = dir + "/slurm";
  const Submission sub = submit_batch(options(out), slurm);
  EXPECT_EQ(sub.total, 4u);
  EXPECT_EQ(sub.submitted, 4u);
  EXPECT_EQ(sub.skipped, 0u);
  ASSERT_EQ(sub.arrays.size(), 1u);
  EXPECT_EQ(sub.arrays[0].job_id, "5001");
  EXPECT_EQ(sub.merge_job_id, "5002");
  EXPECT_EQ(read_text_file(dir + "/sbatch.log"),
            "--parsable --array=0-3 --job-name=lungvol-batch --output=" + out +
                "/slurm/logs/task-%A_%a.log --cpus-per-task=2 " + out + "/slurm/task.sbatch 0\n"
                "--parsable --dependency=afterany:5001 --job-name=lungvol-merge --output=" + out +
                "/slurm/logs/merge-%j.log " + out + "/slurm/merge.sbatch\n");
  EXPECT_NE(read_text_file(out + "/slurm/task.sbatch").find("'/opt/lungvol/bin/lungvol'"),
            std::string::npos);

  // Queued: task 0 running, the rest pending; the merge waits.
  write_text_atomic(dir + "/queue.txt",
                    "5001|0|RUNNING\n5001|1|PENDING\n5001|2|PENDING\n5001|3|PENDING\n"
                    "5002|N/A|PENDING\n");
  Status st = read_status(out, slurm);
  EXPECT_EQ(st.running, 1u);
  EXPECT_EQ(st.pending, 3u);
  EXPECT_EQ(st.merge_state, "PENDING");
  // A second submission while the first is queued is refused.
  EXPECT_THROW(submit_batch(options(out), slurm), Error);

  // The array tasks (as sbatch would run them), task 3 being the corrupt file.
  EXPECT_EQ(run_task(out, 0), 0);
  EXPECT_EQ(run_task(out, 1), 0);
  EXPECT_EQ(run_task(out, 2), 0);
  EXPECT_EQ(run_task(out, 3), static_cast<int>(ExitCode::kInput));
  write_text_atomic(dir + "/queue.txt", "5002|N/A|PENDING\n");
  st = read_status(out, slurm);
  EXPECT_EQ(st.done, 3u);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.running + st.pending + st.lost, 0u);
  EXPECT_FALSE(st.merged);

  const BatchSummary merged = merge_results(out, 5);
  EXPECT_EQ(merged.counts.analyzed, 3u);
  EXPECT_EQ(merged.counts.failed, 1u);
  EXPECT_EQ(merged.exit_status(), static_cast<int>(ExitCode::kBatchFailures));
  write_text_atomic(dir + "/queue.txt", "");
  EXPECT_TRUE(read_status(out, slurm).merged);
  {
    Store a(dir + "/local/results.sqlite");
    Store b(out + "/results.sqlite");
    const auto ca = content(a), cb = content(b);
    EXPECT_EQ(ca.size(), cb.size());
    EXPECT_GT(ca.size(), 3u * 50u);  // every region x metric of 3 scans
    EXPECT_EQ(ca, cb);
    EXPECT_EQ(b.count("failures"), 1u);
    EXPECT_EQ(b.integrity_check(), "ok");
  }
  EXPECT_TRUE(fs::is_regular_file(out + "/measurements.csv"));
  EXPECT_TRUE(fs::is_regular_file(out + "/visits_wide.csv"));

  // Resume: only the failed scan is submitted again. Its task never runs (killed node): the
  // merge stores it as a failure naming its log, and the 3 finished scans stay as they were.
  const Submission again = submit_batch(options(out), slurm);
  EXPECT_EQ(again.skipped, 3u);
  EXPECT_EQ(again.submitted, 1u);
  EXPECT_EQ(again.arrays.at(0).job_id, "5003");
  st = read_status(out, slurm);
  EXPECT_EQ(st.lost, 1u);  // not queued (the fake queue is empty) and no result
  const BatchSummary m2 = merge_results(out, 5);
  EXPECT_EQ(m2.counts.failed, 1u);
  EXPECT_EQ(m2.counts.skipped, 3u);
  Store b(out + "/results.sqlite");
  const auto failed = b.find_scan("S02", "day10");
  ASSERT_TRUE(failed);
  EXPECT_NE(failed->error.find("ended without a result"), std::string::npos);
  EXPECT_NE(failed->error.find("task-5003_0.log"), std::string::npos);
  EXPECT_EQ(b.find_scan("S01", "baseline")->status, "ok");
  EXPECT_EQ(b.count("scans"), 4u);
  EXPECT_EQ(b.count("failures"), 2u);
}

// Registration under Slurm: one array task per subject after the scans' merge, and a merge job
// that stores the outcomes, give the local batch's registrations (same rows, same numbers, same
// change map), and a finished registration is not redone on resubmission.
TEST(SlurmExecutor, PerSubjectRegistrationTasksGiveTheLocalBatchRegistrations) {
  const std::string dir = test::temp_dir("slurm_register");
  BatchOptions lo = options(dir + "/local");
  lo.write_label_maps = true;  // registration needs the label maps
  const BatchSummary local = run_batch(lo);
  ASSERT_EQ(local.counts.analyzed, 3u);
  ASSERT_EQ(local.registered, 1u);  // S01 day10; S02's follow-up is the corrupt file

  const SlurmOptions slurm = fake_slurm(dir);
  const std::string out = dir + "/slurm";
  BatchOptions so = options(out);
  so.write_label_maps = true;
  const Submission sub = submit_batch(so, slurm);
  EXPECT_EQ(sub.merge_job_id, "5002");
  EXPECT_EQ(sub.registration_subjects, 2u);  // S01 and S02 have a baseline and a follow-up
  EXPECT_EQ(sub.registration_job_id, "5003");
  EXPECT_EQ(sub.registration_merge_job_id, "5004");
  const std::string log = read_text_file(dir + "/sbatch.log");
  EXPECT_NE(log.find("--parsable --array=0-1 --dependency=afterany:5002 "
                     "--job-name=lungvol-register --output=" + out +
                     "/slurm/logs/register-%A_%a.log --cpus-per-task=2 " + out +
                     "/slurm/register.sbatch\n"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("--parsable --dependency=afterany:5003 --job-name=lungvol-register-merge "
                     "--output=" + out + "/slurm/logs/register-merge-%j.log " + out +
                     "/slurm/register-merge.sbatch\n"),
            std::string::npos)
      << log;

  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(run_task(out, i), 0);
  EXPECT_EQ(run_task(out, 3), static_cast<int>(ExitCode::kInput));
  merge_results(out, 5);
  EXPECT_EQ(run_registration_task(out, 0), 0);  // S01: registers day10
  EXPECT_EQ(run_registration_task(out, 1), 0);  // S02: no analyzed follow-up, nothing to do
  EXPECT_THROW(run_registration_task(out, 2), Error);
  {
    const Status st = read_status(out, slurm);
    EXPECT_EQ(st.registration_job_id, "5003");
    EXPECT_EQ(st.registration_tasks, 2u);
    EXPECT_EQ(st.registration_done, 2u);
    EXPECT_FALSE(st.registrations_merged);
  }
  const RegistrationMerge m = merge_registrations(out, 5);
  EXPECT_TRUE(read_status(out, slurm).registrations_merged);
  EXPECT_NE(format_status(read_status(out, slurm), out)
                .find("registrations: 2 subject(s) as job array 5003, 2 finished; stored in "
                      "results.sqlite"),
            std::string::npos);
  EXPECT_EQ(m.subjects, 1u);
  EXPECT_EQ(m.registered, 1u);
  EXPECT_EQ(m.failed, 0u);
  EXPECT_EQ(m.exit_status(), 0);

  std::string registered_at;
  {
    Store a(dir + "/local/results.sqlite");
    Store b(out + "/results.sqlite");
    ASSERT_EQ(b.registrations().size(), 1u);
    const auto ra = a.find_registration("S01", "day10"), rb = b.find_registration("S01", "day10");
    ASSERT_TRUE(ra && rb);
    EXPECT_EQ(rb->status, "ok");
    EXPECT_EQ(rb->key, ra->key);
    EXPECT_EQ(rb->inspiration_flagged, ra->inspiration_flagged);
    EXPECT_EQ(rb->consistency_flagged, ra->consistency_flagged);
    registered_at = rb->registered_at;
    std::map<std::string, std::string> ma, mb;
    for (auto* x : {&a, &b}) {
      for (const auto& r : x->registration_measurements()) {
        char v[64];
        std::snprintf(v, sizeof v, "%.17g", r.value ? *r.value : -12345.0);
        (x == &a ? ma : mb)[r.subject_id + "/" + r.visit + " " + r.region + " " + r.metric] =
            std::string(v) + " " + r.unit;
      }
    }
    EXPECT_GT(ma.size(), 50u);  // change classes per region and zone, inspiration, adjusted HU
    EXPECT_EQ(ma, mb);
    const auto ca = a.lung_mask_consistency(), cb = b.lung_mask_consistency();
    ASSERT_EQ(ca.size(), cb.size());
    ASSERT_GT(cb.size(), 0u);
    for (std::size_t i = 0; i < ca.size(); ++i) {
      EXPECT_EQ(ca[i].target_visit, cb[i].target_visit);
      EXPECT_EQ(ca[i].dice, cb[i].dice);
      EXPECT_EQ(ca[i].disagreement_ml, cb[i].disagreement_ml);
    }
    // The change classes partition the baseline lesion: resolved + persistent + progressed +
    // regressed is the baseline scan's own lesion volume (measured by analyze, not registration),
    // and the phantom's lesions shrank (scale 1.5 -> 1.0), so some resolved.
    std::map<std::string, double> change;
    for (const auto& r : b.registration_measurements("S01", "day10")) {
      if (r.region == "lungs" && r.value) change[r.metric] = *r.value;
    }
    double baseline_lesion_ml = 0;
    for (const auto& x : b.measurements(b.find_scan("S01", "baseline")->scan_id)) {
      if (x.region == "lungs" && x.metric == "lesion_ml") baseline_lesion_ml = *x.value;
    }
    ASSERT_GT(baseline_lesion_ml, 1.0);
    EXPECT_NEAR(change.at("change_resolved_ml") + change.at("change_persistent_ml") +
                    change.at("change_progressed_ml") + change.at("change_regressed_ml"),
                baseline_lesion_ml, 1e-6 * baseline_lesion_ml);
    EXPECT_GT(change.at("change_resolved_ml"), 0.0);
  }
  EXPECT_EQ(read_text_file(out + "/registrations/S01/day10/change_map.nii.gz"),
            read_text_file(dir + "/local/registrations/S01/day10/change_map.nii.gz"));

  // Resubmitted (the corrupt scan is retried): the registration tasks go again, but S01's
  // registration is done with the same key, so its task skips it and the row stays as it was.
  const Submission again = submit_batch(so, slurm);
  EXPECT_EQ(again.submitted, 1u);
  EXPECT_EQ(again.registration_job_id, "5007");
  EXPECT_EQ(run_task(out, 0), static_cast<int>(ExitCode::kInput));
  merge_results(out, 5);
  EXPECT_EQ(run_registration_task(out, 0), 0);
  EXPECT_NE(read_text_file(out + "/slurm/registrations/0/result.json").find("\"status\":\"skipped\""),
            std::string::npos);
  const RegistrationMerge m2 = merge_registrations(out, 5);
  EXPECT_EQ(m2.registered, 0u);
  EXPECT_EQ(m2.skipped, 1u);
  Store b(out + "/results.sqlite");
  EXPECT_EQ(b.find_registration("S01", "day10")->registered_at, registered_at);

  // Every scan done and registered: nothing at all is submitted.
  write_text_atomic(dir + "/good.csv", "subject_id,arm,visit,path\n"
                                       "S01,A,baseline," + cohort().dir + "/S01_baseline/dicom\n"
                                       "S01,A,day10," + cohort().dir + "/S01_day10/dicom\n");
  BatchOptions good = so;
  good.manifest = dir + "/good.csv";
  const std::string before = read_text_file(dir + "/sbatch.log");
  const Submission none = submit_batch(good, slurm);
  EXPECT_TRUE(none.finished);
  EXPECT_TRUE(none.registration_job_id.empty());
  EXPECT_EQ(read_text_file(dir + "/sbatch.log"), before);
}

// Scans all done (here by a local batch with --no-registration) but follow-ups not registered:
// only the registration array and its merge are submitted, without a dependency.
TEST(SlurmExecutor, ScansDoneRegistrationsMissingSubmitsOnlyRegistrations) {
  const std::string dir = test::temp_dir("slurm_register_only");
  write_text_atomic(dir + "/manifest.csv",
                    "subject_id,arm,visit,path\n"
                    "S01,A,baseline," + cohort().dir + "/S01_baseline/dicom\n"
                    "S01,A,day10," + cohort().dir + "/S01_day10/dicom\n");
  BatchOptions o = options(dir + "/out");
  o.manifest = dir + "/manifest.csv";
  o.write_label_maps = true;
  o.register_followups = false;
  ASSERT_EQ(run_batch(o).counts.analyzed, 2u);
  o.register_followups = true;
  const SlurmOptions slurm = fake_slurm(dir);
  const Submission sub = submit_batch(o, slurm);
  EXPECT_FALSE(sub.finished);
  EXPECT_TRUE(sub.arrays.empty());
  EXPECT_EQ(sub.skipped, 2u);
  EXPECT_EQ(sub.registration_subjects, 1u);
  EXPECT_EQ(sub.registration_job_id, "5001");
  EXPECT_EQ(read_text_file(dir + "/sbatch.log"),
            "--parsable --array=0-0 --job-name=lungvol-register --output=" + dir +
                "/out/slurm/logs/register-%A_%a.log --cpus-per-task=2 " + dir +
                "/out/slurm/register.sbatch\n"
                "--parsable --dependency=afterany:5001 --job-name=lungvol-register-merge --output=" +
                dir + "/out/slurm/logs/register-merge-%j.log " + dir +
                "/out/slurm/register-merge.sbatch\n");
  // A second submission while the registration jobs are queued is refused.
  write_text_atomic(dir + "/queue.txt", "5001|0|PENDING\n5002|N/A|PENDING\n");
  EXPECT_THROW(submit_batch(o, slurm), Error);
  write_text_atomic(dir + "/queue.txt", "");
  // The task never ran (node lost): the merge stores the follow-up as a failed registration
  // naming the task's log, and the next submission registers it again.
  const RegistrationMerge lost = merge_registrations(dir + "/out", 5);
  EXPECT_EQ(lost.failed, 1u);
  {
    Store store(dir + "/out/results.sqlite");
    const auto r = store.find_registration("S01", "day10");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, "failed");
    EXPECT_NE(r->error.find("register-5001_0.log"), std::string::npos) << r->error;
  }
  const Submission again = submit_batch(o, slurm);
  EXPECT_EQ(again.registration_job_id, "5003");
  EXPECT_EQ(run_registration_task(dir + "/out", 0), 0);
  const RegistrationMerge m = merge_registrations(dir + "/out", 5);
  EXPECT_EQ(m.registered, 1u);
  EXPECT_EQ(m.failed, 0u);
  Store store(dir + "/out/results.sqlite");
  EXPECT_EQ(store.find_registration("S01", "day10")->status, "ok");
  EXPECT_TRUE(fs::is_regular_file(dir + "/out/registrations/S01/day10/change_map.nii.gz"));
}

TEST(SlurmExecutor, AllDoneSubmitsNothing) {
  const std::string dir = test::temp_dir("slurm_done");
  const std::string out = dir + "/out";
  BatchOptions o = options(out);
  // Only the three good scans, analyzed locally first.
  write_text_atomic(dir + "/manifest.csv",
                    "subject_id,arm,visit,path\n"
                    "S01,A,baseline," + cohort().dir + "/S01_baseline/dicom\n"
                    "S01,A,day10," + cohort().dir + "/S01_day10/dicom\n");
  o.manifest = dir + "/manifest.csv";
  ASSERT_EQ(run_batch(o).counts.analyzed, 2u);
  const SlurmOptions slurm = fake_slurm(dir);
  const Submission sub = submit_batch(o, slurm);
  EXPECT_TRUE(sub.finished);
  EXPECT_EQ(sub.skipped, 2u);
  EXPECT_EQ(sub.submitted, 0u);
  EXPECT_FALSE(fs::exists(dir + "/sbatch.log"));
}

TEST(SlurmExecutor, MissingOrRefusingSbatchIsAClearError) {
  const std::string dir = test::temp_dir("slurm_errors");
  SlurmOptions s;
  s.sbatch = dir + "/no-such-sbatch";
  try {
    submit_batch(options(dir + "/out"), s);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("no-such-sbatch' was not found"), std::string::npos);
  }
  s.sbatch = dir + "/sbatch";
  s.lungvol_binary = "/bin/true";
  make_executable(s.sbatch,
                  "#!/bin/sh\necho 'sbatch: error: invalid partition specified: gpu' >&2\nexit 1\n");
  try {
    submit_batch(options(dir + "/out"), s);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kOutput);
    EXPECT_NE(std::string(e.what()).find("invalid partition specified: gpu"), std::string::npos);
  }
  // Nothing was submitted: no task list, no run recorded.
  EXPECT_FALSE(fs::exists(dir + "/out/slurm/tasks.json"));
  Store store(dir + "/out/results.sqlite");
  EXPECT_EQ(store.count("runs"), 0u);
}

}  // namespace
}  // namespace lungvol::batch::slurm
