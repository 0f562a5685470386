#include <gtest/gtest.h>

#include "batch/qc.hpp"
#include "batch/store.hpp"
#include "core/error.hpp"
#include "core/protocol.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::batch {
namespace {

TEST(HistogramBlob, RoundTripsNonZeroRange) {
  HuHistogram h;
  h.counts[HuHistogram::bin(-1000)] = 5;
  h.counts[HuHistogram::bin(-999)] = 0;
  h.counts[HuHistogram::bin(-998)] = 300;               // two varint bytes
  h.counts[HuHistogram::bin(40)] = 1ull << 40;          // six bytes
  int hu_min = 0, n_bins = 0;
  const std::string blob = encode_counts(h, &hu_min, &n_bins);
  EXPECT_EQ(hu_min, -1000);
  EXPECT_EQ(n_bins, 1041);
  // 1038 single-byte bins (5 and the zeros), 300 in 2 bytes, 2^40 in 6 bytes.
  EXPECT_EQ(blob.size(), 1039u + 2u + 6u);
  const HuHistogram back = decode_counts(blob, hu_min, n_bins);
  EXPECT_EQ(back.counts, h.counts);

  const HuHistogram empty;
  EXPECT_EQ(encode_counts(empty, &hu_min, &n_bins), "");
  EXPECT_EQ(n_bins, 0);
  EXPECT_EQ(decode_counts("", hu_min, 0).total(), 0u);
  EXPECT_THROW(decode_counts(std::string("\x80", 1), -1000, 1), Error);
}

pipeline::RegionResult lungs_region(std::uint64_t ggo, std::uint64_t solid) {
  vol::RegionHistograms h;
  h.name = "lungs";
  h.lung.counts[HuHistogram::bin(-850)] = 10000;
  h.lung.counts[HuHistogram::bin(-500)] = ggo + 50;
  h.lung.counts[HuHistogram::bin(-100)] = solid;
  h.suppressed.counts[HuHistogram::bin(-500)] = 50;  // vessels inside the lesion band
  return pipeline::measure_regions({h}, load_protocol("covid-ggo-solid"), 0.001)[0];
}

TEST(Store, SavesReplacesAndChecks) {
  const std::string dir = test::temp_dir("store");
  Store store(dir + "/results.sqlite");
  RunInfo info;
  info.started_at = "2020-01-01T00:00:00Z";
  info.software_version = "test";
  const auto run = store.begin_run(info);
  ScanRecord rec;
  rec.subject_id = "S1";
  rec.arm = "A";
  rec.visit = "baseline";
  rec.path = "/x";
  rec.status = "ok";
  rec.run_id = run;
  store.save_scan(rec, {lungs_region(250, 100)});
  auto found = store.find_scan("S1", "baseline");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->scan_id, rec.scan_id);
  double lesion_pct = -1;
  for (const auto& m : store.measurements(rec.scan_id)) {
    if (m.region == "lungs" && m.metric == "lesion_pct") lesion_pct = *m.value;
  }
  // (250 + 100) lesion voxels of 10400 lung voxels.
  EXPECT_DOUBLE_EQ(lesion_pct, 100.0 * 350.0 / 10400.0);
  const std::size_t per_scan = store.count("measurements");
  EXPECT_GT(per_scan, 10u);

  // The same subject x visit again replaces everything (one scan, one set of rows).
  store.save_scan(rec, {lungs_region(10, 0)});
  EXPECT_EQ(store.count("scans"), 1u);
  EXPECT_EQ(store.count("measurements"), per_scan);
  EXPECT_EQ(store.count("histograms"), 2u);
  const auto hist = store.histograms("lungs");
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[0].kind, "lung");
  EXPECT_EQ(hist[0].histogram.total(), 10000u + 60u);

  // A failure replaces the scan and appends a failures row; measurements go with the scan.
  rec.status = "failed";
  rec.error = "corrupt";
  store.save_failure(rec, 4);
  EXPECT_EQ(store.count("scans"), 1u);
  EXPECT_EQ(store.count("measurements"), 0u);
  EXPECT_EQ(store.count("failures"), 1u);
  EXPECT_EQ(store.find_scan("S1", "baseline")->status, "failed");
  EXPECT_EQ(store.integrity_check(), "ok");

  // A status outside ok / failed violates the schema and leaves nothing behind.
  ScanRecord bad = rec;
  bad.visit = "day10";
  bad.status = "maybe";
  EXPECT_THROW(store.save_scan(bad, {lungs_region(1, 1)}), Error);
  EXPECT_FALSE(store.find_scan("S1", "day10"));
  EXPECT_EQ(store.count("measurements"), 0u);
}

TEST(Store, RefusesOtherSchemaVersion) {
  const std::string dir = test::temp_dir("store_schema");
  {
    Store s(dir + "/r.sqlite");
    s.exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  }
  EXPECT_THROW(Store(dir + "/r.sqlite"), Error);
}

// A store written by the previous lungvol (schema 1): read as it is when opened read-only,
// upgraded in place when a batch opens it.
TEST(Store, ReadsAndUpgradesSchemaVersion1) {
  const std::string path = test::temp_dir("store_v1") + "/r.sqlite";
  {
    Store s(path);
    ScanRecord rec;
    rec.run_id = s.begin_run(RunInfo{});
    rec.subject_id = "S1";
    rec.arm = "A";
    rec.visit = "baseline";
    rec.path = "/data/s1";
    rec.status = "ok";
    s.save_scan(rec, {lungs_region(1, 2)});
    for (const char* c : {"patient_id", "study_instance_uid", "image_sha256", "input_patients"}) {
      s.exec(std::string("ALTER TABLE scans DROP COLUMN ") + c);
    }
    s.exec("DROP TABLE protocols");
    s.exec("DROP TABLE identity_flags");
    s.exec("UPDATE meta SET value = '1' WHERE key = 'schema_version'");
  }
  std::string state_v1;
  {
    Store ro(path, Store::Mode::kReadOnly);
    EXPECT_EQ(ro.schema_version(), 1);
    ASSERT_EQ(ro.scans().size(), 1u);
    EXPECT_EQ(ro.scans()[0].patient_id, "");
    EXPECT_TRUE(ro.identity_flags().empty());
    EXPECT_FALSE(ro.protocol_toml("x"));
    state_v1 = ro.results_state();
    EXPECT_EQ(state_v1.size(), 64u);
  }
  {
    Store rw(path);
    EXPECT_EQ(rw.schema_version(), 3);  // upgraded through 2 to 3 in one transaction
    EXPECT_EQ(rw.count("identity_flags"), 0u);
    EXPECT_EQ(rw.count("reviews"), 0u);
    EXPECT_TRUE(rw.scans()[0].flags.empty());
    EXPECT_EQ(rw.scans()[0].subject_id, "S1");
    EXPECT_EQ(rw.results_state(), state_v1) << "the same results, the same state";
  }
  Store again(path, Store::Mode::kReadOnly);
  EXPECT_EQ(again.schema_version(), 3);
}

TEST(Store, ResultsStateFollowsEveryChange) {
  const std::string path = test::temp_dir("store_state") + "/r.sqlite";
  Store s(path);
  ScanRecord rec;
  rec.run_id = s.begin_run(RunInfo{});
  rec.subject_id = "S1";
  rec.arm = "A";
  rec.visit = "baseline";
  rec.path = "/data/s1";
  rec.status = "ok";
  s.save_scan(rec, {lungs_region(1, 2)});
  const std::string a = s.results_state();
  EXPECT_EQ(s.results_state(), a) << "deterministic";
  s.record_results_state();
  EXPECT_EQ(s.recorded_results_state(), a);
  EXPECT_EQ(s.results_generation(), 1);
  s.exec("UPDATE measurements SET value = value + 1e-12 WHERE metric = 'lesion_pct' AND region = 'lungs'");
  const std::string b = s.results_state();
  EXPECT_NE(b, a);
  s.save_scan(rec, {lungs_region(1, 3)});
  EXPECT_NE(s.results_state(), b);
  s.record_results_state();
  EXPECT_EQ(s.results_generation(), 2);
}

// The registration step's lung-mask consistency raises segmentation_disagreement on the target
// visit, only while the registration describes the scans stored now.
TEST(StoreQc, FlaggedMaskConsistencyRaisesSegmentationDisagreement) {
  const std::string dir = test::temp_dir("store_qc_consistency");
  Store store(dir + "/results.sqlite");
  RunInfo info;
  info.started_at = "2020-01-01T00:00:00Z";
  info.software_version = "test";
  const auto run = store.begin_run(info);
  Manifest m;
  for (const char* visit : {"baseline", "week4"}) {
    ManifestEntry e;
    e.subject_id = "S1";
    e.arm = "A";
    e.visit = visit;
    e.path = e.full_path = std::string("/x/") + visit;
    m.entries.push_back(e);
  }
  store.set_manifest(m);
  for (const char* visit : {"baseline", "week4"}) {
    ScanRecord rec;
    rec.subject_id = "S1";
    rec.arm = "A";
    rec.visit = visit;
    rec.path = std::string("/x/") + visit;
    rec.status = "ok";
    rec.input_sha256 = std::string("sha-") + visit;
    rec.run_id = run;
    store.save_scan(rec, {lungs_region(250, 100)});
  }
  RegistrationRecord r;
  r.subject_id = "S1";
  r.visit = "week4";
  r.baseline_visit = "baseline";
  r.status = "ok";
  r.baseline_input_sha256 = "sha-baseline";
  r.followup_input_sha256 = "sha-week4";
  r.run_id = run;
  store.save_registration(r, {});
  RegistrationSubjectRecord subject;
  subject.subject_id = "S1";
  subject.baseline_visit = "baseline";
  subject.status = "ok";
  subject.run_id = run;
  ConsistencyRecord c;
  c.subject_id = "S1";
  c.target_visit = "week4";
  c.source_visit = "baseline";
  c.source_role = "baseline";
  c.dice = 0.85;
  c.flagged = true;
  c.reason = "Dice below 0.93";
  store.save_registration_subject(subject, {c});
  const std::vector<std::string> order = {"baseline", "week4"};
  const auto has_flag = [&](const std::string& visit) {
    const auto qc = compute_qc(store, order);
    const auto it = qc.find({"S1", visit});
    if (it == qc.end()) return false;
    for (const auto& f : it->second.flags) {
      if (f.code == "segmentation_disagreement") {
        EXPECT_DOUBLE_EQ(*f.value, 0.85);
        EXPECT_NE(f.message.find("Dice below 0.93"), std::string::npos) << f.message;
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(has_flag("week4"));
  EXPECT_FALSE(has_flag("baseline"));
  // The follow-up analyzed again (another input): the stored registration no longer describes it.
  r.followup_input_sha256 = "sha-older";
  store.save_registration(r, {});
  EXPECT_FALSE(has_flag("week4"));
}

}  // namespace
}  // namespace lungvol::batch
