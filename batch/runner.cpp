#include "batch/runner.hpp"

#include <fcntl.h>
#include <omp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <dcmtk/dcmsr/cmr/init.h>
#include <fmt/format.h>

#include "batch/exports.hpp"
#include "batch/registrations.hpp"
#include "batch/review.hpp"
#include "core/cancel.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"
#include "core/version.hpp"
#include "io/image_io.hpp"
#include "io/itk_factories.hpp"
#include "io/series.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch {

int BatchSummary::exit_status() const {
  return counts.failed > 0 || registrations_failed > 0 ? static_cast<int>(ExitCode::kBatchFailures)
                                                       : 0;
}

DirectoryLock::DirectoryLock(const std::string& lock_path, double wait_seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_seconds);
  while (true) {
    try {
      DirectoryLock probe(lock_path);
      std::swap(fd_, probe.fd_);  // keep the descriptor (and so the flock)
      return;
    } catch (const Error&) {
      if (std::chrono::steady_clock::now() >= until) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

DirectoryLock::DirectoryLock(const std::string& lock_path) {
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(ExitCode::kOutput, "cannot create lock file '" + lock_path + "'");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    const auto n = ::pread(fd_, buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "unknown";
    holder.erase(std::remove(holder.begin(), holder.end(), '\n'), holder.end());
    ::close(fd_);
    fd_ = -1;
    throw Error(ExitCode::kOutput,
                "another lungvol batch (pid " + holder + ") is using this output folder; it holds '" +
                    lock_path + "'. Wait for it to finish or use another -o folder");
  }
  // The pid is only informative (the kernel releases the flock when the process dies).
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const auto w = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

namespace {

// The hash load_ct() will record, computed without decoding pixels: lets a rerun skip a scan
// whose input has not changed. "" when it cannot be computed (the scan is then analyzed).
// With reviewer masks the scan's identity covers them too, so a corrected mask re-runs it.
std::string with_masks(const std::string& image_hash, const ManifestEntry& e) {
  return scan_identity(image_hash, e.lungs_mask, e.lesions_mask);
}

std::string input_hash(const std::string& path, const std::string& series_uid) {
  try {
    std::error_code ec;
    if (fs::is_regular_file(path, ec) && io::is_image_file(path)) return sha256_file(path);
    const io::Discovery d = io::discover_dicom(path);
    std::string reason;
    return sha256_files(io::choose_series(d, series_uid, &reason).files);
  } catch (const std::exception&) {
    return "";
  }
}

std::string own_command_line() {
  std::string raw;
  try {
    raw = read_text_file("/proc/self/cmdline");
  } catch (const std::exception&) {
    return "";
  }
  std::string out;
  for (char c : raw) out.push_back(c == '\0' ? ' ' : c);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string join_lines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "\n") + s;
  return out;
}

std::string format_duration(double s) {
  const long t = static_cast<long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02d}:{:02d}", t / 3600, (t / 60) % 60, t % 60)
                   : fmt::format("{}:{:02d}", t / 60, t % 60);
}

class Progress {
 public:
  Progress(std::size_t total, bool tty) : total_(total), tty_(tty) {}
  void scan_done(const ManifestEntry& e, const std::string& outcome, double seconds,
                 const std::string& error = "", int exit_code = 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error.empty()) {
      if (tty_) std::fprintf(stderr, "\r\033[K");  // the warning replaces the progress line
      log::warn("batch: {} {} failed (exit {}): {}", e.subject_id, e.visit, exit_code, error);
    }
    ++done_;
    if (outcome == "failed") ++failed_;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    // ETA from the wall-clock rate so far (skips are cheap and parallel jobs overlap).
    const double eta = done_ ? elapsed / static_cast<double>(done_) *
                                   static_cast<double>(total_ - done_)
                             : 0.0;
    if (tty_) {
      std::fprintf(stderr, "\r\033[Kbatch: %zu/%zu done, %zu failed, elapsed %s, ETA %s",
                   done_, total_, failed_, format_duration(elapsed).c_str(),
                   format_duration(eta).c_str());
      if (done_ == total_) std::fputc('\n', stderr);
      std::fflush(stderr);
    } else {
      log::info("batch: [{}/{}] {} {} {} ({:.1f} s); {} failed; ETA {}", done_, total_,
                e.subject_id, e.visit, outcome, seconds, failed_, format_duration(eta));
    }
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::mutex mutex_;
  std::size_t total_, done_ = 0, failed_ = 0;
  bool tty_;
  Clock::time_point start_ = Clock::now();
};

// A failed scan has no numbers in the store: the outputs of an earlier run of it go too, so the
// folder never shows what the store does not hold. Only lungvol's own files are removed.
void remove_scan_folder(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!pipeline::output_file_is_replaceable(entry.path().filename().string())) return;
  }
  fs::remove_all(dir, ec);
  ::rmdir(fs::path(dir).parent_path().c_str());  // the subject's folder, when now empty
}

struct Job {
  const BatchOptions& options;
  const Protocol& protocol;
  Store& store;
  std::int64_t run_id;
  Progress& progress;
  std::atomic<std::size_t> analyzed{0}, skipped{0}, failed{0};
};

void process(const ManifestEntry& e, Job& job) {
  if (interrupt_requested()) return;  // Ctrl-C: no new scan starts
  // Every log line of this scan names it (parallel scans interleave their lines).
  log::ScopedContext context(e.subject_id + " " + e.visit);
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  if (!job.options.force && scan_is_done(job.store, e, job.protocol)) {
    ++job.skipped;
    job.progress.scan_done(e, "skipped (done)", seconds());
    return;
  }
  ScanOutcome out = analyze_scan(e, job.options, job.protocol, job.run_id);
  // A store failure is not the scan's fault: it propagates and ends the batch.
  if (out.record.status == "ok") {
    job.store.save_scan(out.record, out.regions);
    ++job.analyzed;
    job.progress.scan_done(e, "ok", seconds());
    return;
  }
  job.store.save_failure(out.record, out.exit_code);
  ++job.failed;
  job.progress.scan_done(e, "failed", seconds(), out.record.error, out.exit_code);
}

}  // namespace

ScanRecord base_record(const ManifestEntry& e, const std::string& outdir,
                       const Protocol& protocol, std::int64_t run_id) {
  // Every path component under OUTDIR is checked wherever a manifest entry comes from.
  const std::string where = "manifest line " + std::to_string(e.line);
  require_path_component("subject_id", e.subject_id, where);
  require_path_component("visit", e.visit, where);
  ScanRecord r;
  r.subject_id = e.subject_id;
  r.arm = e.arm;
  r.visit = e.visit;
  r.visit_day = e.visit_day;
  r.site = e.site;
  r.population = e.population;
  r.path = e.full_path;
  r.series_uid = e.series_uid;
  r.protocol_name = protocol.name;
  r.protocol_version = protocol.version;
  r.protocol_sha256 = protocol.sha256;
  r.software_version = kSoftwareVersion;
  r.run_id = run_id;
  r.outdir = (fs::path(outdir) / "scans" / e.subject_id / e.visit).string();
  return r;
}

bool scan_is_done(Store& store, const ManifestEntry& e, const Protocol& protocol) {
  const auto prior = store.find_scan(e.subject_id, e.visit);
  return prior && prior->status == "ok" && prior->protocol_sha256 == protocol.sha256 &&
         prior->software_version == kSoftwareVersion && !prior->input_sha256.empty() &&
         with_masks(input_hash(e.full_path, e.series_uid), e) == prior->input_sha256;
}

ScanOutcome analyze_scan(const ManifestEntry& e, const BatchOptions& options,
                         const Protocol& protocol, std::int64_t run_id) {
  const auto t0 = std::chrono::steady_clock::now();
  ScanOutcome out;
  ScanRecord& rec = out.record;
  rec = base_record(e, options.outdir, protocol, run_id);
  try {
    // Identity: the PatientIDs of every CT series in the input folder (a folder holding several
    // patients is flagged). Headers only; an unreadable folder fails in analyze() below.
    std::error_code ec;
    if (fs::is_directory(e.full_path, ec)) {
      try {
        std::set<std::string> ids;
        for (const auto& series : io::discover_dicom(e.full_path).series) {
          if (!series.patient_id.empty()) ids.insert(series.patient_id);
        }
        rec.input_patients = join_lines({ids.begin(), ids.end()});
      } catch (const Error&) {
      }
    }
    pipeline::AnalyzeOptions o;
    o.input = e.full_path;
    o.outdir = rec.outdir;
    o.protocol = protocol.source_path;
    o.read.series_uid = e.series_uid;
    o.lungs_mask = e.lungs_mask;
    o.lesions_mask = e.lesions_mask;
    o.write_label_maps = options.write_label_maps;
    o.write_qc_images = options.write_qc_images;
    o.write_meshes = options.write_meshes;
    pipeline::Analysis a = pipeline::analyze(o);
    rec.series_uid = a.input.series.series_instance_uid;
    rec.input_sha256 = with_masks(a.input.sha256, e);
    rec.image_sha256 = a.input.sha256;
    rec.patient_id = a.input.series.patient_id;
    rec.study_uid = a.input.series.study_instance_uid;
    rec.study_date = a.input.series.study_date;
    rec.analyzed_at = a.analyzed_at;
    rec.timing_s = a.timings.total_s;
    rec.voxel_ml = a.input.image.geom.voxel_volume_ml();
    rec.warnings = join_lines(a.warnings);
    rec.flags = pipeline::metrics_json(a)["flags"].dump();
    rec.status = "ok";
    out.regions = std::move(a.regions);
    return out;
  } catch (const Error& err) {
    if (err.code() == ExitCode::kInterrupted) throw;  // not the scan's fault: not stored
    rec.error = err.what();
    out.exit_code = err.exit_status();
  } catch (const std::bad_alloc&) {
    rec.error = "out of memory";
    out.exit_code = static_cast<int>(ExitCode::kProcessing);
  } catch (const std::exception& err) {
    rec.error = err.what();
    out.exit_code = static_cast<int>(ExitCode::kProcessing);
  }
  rec.status = "failed";
  rec.analyzed_at = utc_timestamp();
  rec.timing_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  remove_scan_folder(rec.outdir);
  return out;
}

// Libraries that build global tables lazily, without locks, on their first use, which two
// workers may reach at the same moment:
// * DCMTK's content mapping resource (libcmr): every CID class fills a static std::map of
//   codes on first use. Two workers writing their first sr.dcm at once crashed
//   `batch --jobs 2` with SIGSEGV in std::_Rb_tree_insert_and_rebalance under
//   CID5001_Countries::getCodes() (core dump; about 3 runs in 100 on an 8-row manifest).
//   DCMTK documents initializeAllContextGroups() for multi-threaded programs.
// * ITK 5.2's singletons: io::register_itk_factories() creates them once, for every caller
//   (also `analyze`, which writes its label maps from two threads).
void warm_up_libraries() {
  CMR_ContentMappingResource::initializeAllContextGroups();
  io::register_itk_factories();
}

int effective_jobs(int requested, std::size_t scans, std::string* note) {
  const int cores = std::max(1, omp_get_num_procs());
  int jobs = std::max(1, requested);
  if (jobs > cores) {
    if (note) {
      *note = fmt::format("--jobs {} is more than the {} core(s) of this machine; running {} "
                          "scan(s) at once (more would only compete for the cores and need "
                          "memory for each scan)",
                          requested, cores, cores);
    }
    jobs = cores;
  }
  return std::min<int>(jobs, static_cast<int>(std::max<std::size_t>(1, scans)));
}

BatchInputs load_batch_inputs(const BatchOptions& options) {
  BatchInputs in;
  if (options.schedule.empty()) {
    in.schedule = trial::default_visit_schedule();
  } else {
    in.schedule = trial::load_visit_schedule(options.schedule);
    in.schedule_toml = read_text_file(options.schedule);
  }
  // Visit names become folders: a schedule's names are checked like the manifest's.
  check_schedule_names(in.schedule, options.schedule.empty() ? "default schedule" : options.schedule);
  ManifestOptions mo;
  mo.ignore_columns = options.ignore_columns;
  in.manifest = read_manifest(options.manifest, in.schedule, mo);
  in.protocol = load_protocol(options.protocol);
  in.protocol.source_path = fs::absolute(in.protocol.source_path).string();
  in.protocol_toml = pipeline::protocol_text(in.protocol);
  return in;
}

RunInfo make_run_info(const BatchOptions& options, const BatchInputs& in, int jobs,
                      int threads) {
  RunInfo info;
  info.started_at = utc_timestamp();
  info.software_version = kSoftwareVersion;
  info.protocol_name = in.protocol.name;
  info.protocol_version = in.protocol.version;
  info.protocol_sha256 = in.protocol.sha256;
  info.lesion_low_hu = in.protocol.lesion.low_hu();
  info.lesion_split_hu = in.protocol.lesion.split_hu();
  info.lesion_high_hu = in.protocol.lesion.high_hu();
  info.schedule_toml = in.schedule_toml;
  info.manifest_path = fs::absolute(options.manifest).string();
  info.manifest_sha256 = in.manifest.sha256;
  info.host = host_name();
  info.command_line = options.command_line.empty() ? own_command_line() : options.command_line;
  info.jobs = jobs;
  info.threads = threads;
  return info;
}

BatchSummary run_batch(const BatchOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options.jobs < 1) throw Error(ExitCode::kUsage, "batch: --jobs must be at least 1");
  clear_interrupt();
  const BatchInputs inputs = load_batch_inputs(options);
  const trial::VisitSchedule& schedule = inputs.schedule;
  Manifest manifest = inputs.manifest;
  const Protocol& protocol = inputs.protocol;

  ensure_directory(options.outdir);
  DirectoryLock lock((fs::path(options.outdir) / ".lock").string());
  Store store((fs::path(options.outdir) / "results.sqlite").string());
  // A locked review is final: nothing may change the results it covers.
  if (const auto l = store.review_lock()) {
    throw Error(ExitCode::kUsage,
                "batch: the review of " + options.outdir + " was locked " + l->locked_at + " by " +
                    l->locked_by + "; unlock it with `lungvol review " + options.outdir +
                    " --unlock` before analyzing again");
  }
  // The reader's corrections: those scans are measured with the given masks (re-run when the
  // masks differ from the ones they were measured with).
  if (const std::size_t n = apply_review_masks(store, manifest)) {
    log::info("batch: {} scan(s) measured with the reader's corrected masks", n);
  }

  const int total_threads = options.threads > 0 ? options.threads : omp_get_num_procs();
  std::string jobs_note;
  const int jobs = effective_jobs(options.jobs, manifest.entries.size(), &jobs_note);
  if (!jobs_note.empty()) log::warn("batch: {}", jobs_note);
  const int per_job = std::max(1, total_threads / std::max(1, jobs));

  store.save_protocol(protocol.sha256, protocol.name, protocol.version, inputs.protocol_toml);
  const std::int64_t run_id = store.begin_run(make_run_info(options, inputs, jobs, per_job));
  store.set_manifest(manifest);

  const bool tty = options.progress_tty >= 0 ? options.progress_tty == 1
                                              : ::isatty(STDERR_FILENO) == 1;
  Progress progress(manifest.entries.size(), tty);
  Job job{options, protocol, store, run_id, progress};
  log::info("batch: {} scans, {} job(s) x {} thread(s), protocol {} {}, output {}",
            manifest.entries.size(), jobs, per_job, protocol.name, protocol.version,
            options.outdir);
  io::set_itk_threads(per_job);

  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr fatal;
  std::mutex fatal_mutex;
  auto worker = [&] {
    omp_set_num_threads(per_job);  // per thread: each worker's OpenMP regions use its share
    while (!stop) {
      const std::size_t i = next++;
      if (i >= manifest.entries.size()) return;
      try {
        process(manifest.entries[i], job);
      } catch (...) {
        std::lock_guard<std::mutex> l(fatal_mutex);
        if (!fatal) fatal = std::current_exception();
        stop = true;
      }
    }
  };
  warm_up_libraries();  // also for one job: write_outputs writes its files in parallel
  {
    // Ctrl-C / SIGTERM: running scans stop at their next stage (their temporary folders are
    // removed), no new scan starts, everything finished stays.
    InterruptHandler on_interrupt(
        "\nlungvol batch: interrupted; stopping the running scan(s) (finished scans are kept; "
        "Ctrl-C again to stop at once)\n");
    if (jobs <= 1) {
      worker();
    } else {
      std::vector<std::thread> threads;
      for (int j = 0; j < jobs; ++j) threads.emplace_back(worker);
      for (auto& t : threads) t.join();
    }
  }
  if (fatal) {
    try {
      std::rethrow_exception(fatal);
    } catch (const Error& e) {
      if (e.code() != ExitCode::kInterrupted) throw;  // an interruption is handled below
    }
  }
  if (interrupt_requested()) {
    // The tables describe what the store holds; the run stays unfinished (finished_at NULL).
    refresh_batch_tables(store, schedule, options.outdir);
    const std::size_t done = job.analyzed + job.skipped + job.failed;
    throw Error(ExitCode::kInterrupted,
                fmt::format("interrupted, re-run to resume: {} of {} scans done ({} analyzed, {} "
                            "skipped, {} failed) are kept in {}; the same command continues with "
                            "the rest",
                            done, manifest.entries.size(), job.analyzed.load(), job.skipped.load(),
                            job.failed.load(), store.path()));
  }

  // Every follow-up registered to its subject's baseline, once the subject's scans are stored.
  BatchSummary summary;
  {
    InterruptHandler on_interrupt(
        "\nlungvol batch: interrupted; stopping the registrations (finished ones are kept)\n");
    try {
      const RegistrationCounts rc =
          run_registrations(store, inputs, options, jobs, per_job, run_id);
      summary.registered = rc.registered;
      summary.registrations_skipped = rc.skipped;
      summary.registrations_failed = rc.failed;
    } catch (const Error& e) {
      if (e.code() != ExitCode::kInterrupted) throw;
      refresh_batch_tables(store, schedule, options.outdir);
      throw Error(ExitCode::kInterrupted,
                  "interrupted while registering follow-ups, re-run to resume: every scan and the "
                  "finished registrations are kept in " + store.path());
    }
  }

  refresh_batch_tables(store, schedule, options.outdir);

  summary.run_id = run_id;
  summary.counts.total = manifest.entries.size();
  summary.counts.analyzed = job.analyzed;
  summary.counts.skipped = job.skipped;
  summary.counts.failed = job.failed;
  store.finish_run(run_id, summary.counts);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace lungvol::batch
