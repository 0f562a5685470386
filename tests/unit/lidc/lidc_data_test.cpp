// The default protocol's ground-glass / solid split against radiologists' texture ratings of
// 322 LIDC-IDRI nodules (../shared/data/lidc-nodule-vois-ct-slicing; docs/validation.md).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "tests/support/test_paths.hpp"
#include "tests/unit/lidc/lidc_nodules.hpp"

namespace lungvol::lidc {
namespace {

TEST(LidcNodules, DefaultProtocolSeparatesGroundGlassFromSolid) {
  LUNGVOL_REQUIRE_DATA("lidc-nodule-vois-ct-slicing");
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  const Protocol p = load_protocol(kDefaultProtocol);
  const std::vector<Nodule> nodules = load_nodules(test::shared_data("lidc-nodule-vois-ct-slicing"));
  ASSERT_EQ(nodules.size(), 322u);  // SOURCE.md: 75 + 14 + 30 + 53 + 150
  std::vector<double> by_texture[6], solid, non_solid;
  for (const Nodule& n : nodules) {
    ASSERT_GE(n.texture, 1);
    ASSERT_LE(n.texture, 5);
    const double f = banded_solid_fraction(histogram(n, [](std::size_t) { return true; }), p,
                                           n.voxel_ml);
    by_texture[n.texture].push_back(f);
    if (n.texture <= 2) non_solid.push_back(f);
    if (n.texture == 5) solid.push_back(f);
  }
  EXPECT_EQ(by_texture[1].size(), 75u);
  EXPECT_EQ(by_texture[5].size(), 150u);
  const double auc = roc_auc(solid, non_solid);
  std::printf("LIDC: AUC (texture 1-2 vs 5) %.4f; median solid fraction 1: %.3f, 5: %.3f\n", auc,
              median(by_texture[1]), median(by_texture[5]));
  RecordProperty("auc", std::to_string(auc));
  EXPECT_GE(auc, 0.95);
  EXPECT_LT(median(by_texture[1]), median(by_texture[5]));
  EXPECT_LT(median(by_texture[1]), median(by_texture[3]));
  EXPECT_LT(median(by_texture[3]), median(by_texture[5]));
}

}  // namespace
}  // namespace lungvol::lidc
