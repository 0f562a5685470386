// Accuracy on real data no one here made: the CIP COPDGene case with its whole-lung mask.
#include <gtest/gtest.h>

#include <cmath>

#include "core/labels.hpp"
#include "core/protocol.hpp"
#include "io/image_io.hpp"
#include "segmentation/lungs.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::seg {
namespace {

Protocol default_protocol() {
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  return load_protocol(kDefaultProtocol);
}

TEST(LungsCip, DiceAgainstWholeLungMask) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/wholeLung-64.nrrd");
  const CtImage ct = io::read_ct_image(test::shared_data("cip-chest-imaging-platform/ct-64.nrrd"));
  const LabelImage ref =
      io::read_label_image(test::shared_data("cip-chest-imaging-platform/wholeLung-64.nrrd"));
  const LungSegmentation s = segment_lungs(ct, default_protocol().lung);
  std::size_t a = 0, b = 0, both = 0, right_ok = 0, right_ref = 0;
  for (std::size_t n = 0; n < ct.size(); ++n) {
    const bool mine = s.lungs[n] == labels::kRightLung || s.lungs[n] == labels::kLeftLung;
    const bool theirs = ref[n] != 0;
    a += mine;
    b += theirs;
    both += mine && theirs;
    if (theirs && mine && s.lungs[n] == labels::kRightLung) ++right_ok;
    (void)right_ref;
  }
  const double dice = 2.0 * double(both) / double(a + b);
  const double vol_err = (double(a) - double(b)) / double(b);
  RecordProperty("dice", std::to_string(dice));
  RecordProperty("volume_error", std::to_string(vol_err));
  std::printf("CIP ct-64: Dice %.4f, volume %.1f mL vs %.1f mL (%.2f%%)\n", dice,
              double(a) * ct.geom.voxel_volume_ml(), double(b) * ct.geom.voxel_volume_ml(),
              100 * vol_err);
  EXPECT_GE(dice, 0.97);
  EXPECT_LE(std::abs(vol_err), 0.03);
}

}  // namespace
}  // namespace lungvol::seg
