#include <gtest/gtest.h>

#include "core/error.hpp"
#include "phantom/phantom.hpp"

namespace lungvol::phantom {

TEST(LesionSpec, ParsesEntries) {
  const auto l =
      parse_lesion_spec("ggo:right:0.1,-0.2,0.5:20,15,25; pleural:left:0.3,0.1,0.4:15,18,20");
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].type, LesionType::kGroundGlass);
  EXPECT_EQ(l[0].side, LungSide::kRight);
  EXPECT_FALSE(l[0].pleural);
  EXPECT_DOUBLE_EQ(l[0].uvw[1], -0.2);
  EXPECT_DOUBLE_EQ(l[0].semi_axes_mm[2], 25.0);
  EXPECT_EQ(l[1].type, LesionType::kSolid);
  EXPECT_TRUE(l[1].pleural);
  EXPECT_EQ(l[1].side, LungSide::kLeft);
  EXPECT_DOUBLE_EQ(l[1].semi_axes_mm[0], 15.0);
  // Formatting and parsing again gives the same set.
  const auto again = parse_lesion_spec(format_lesion_spec(l));
  ASSERT_EQ(again.size(), 2u);
  EXPECT_DOUBLE_EQ(again[1].uvw[2], 0.4);
  EXPECT_TRUE(again[1].pleural);
}

TEST(LesionSpec, RejectsBadEntriesAsUsageErrors) {
  for (const char* bad :
       {"ggo:right:0.1,0.2:1,2,3", "blob:right:0,0,0.5:1,2,3", "ggo:middle:0,0,0.5:1,2,3",
        "solid:left:0,0,0.5:1,-2,3", "solid:left:0,x,0.5:1,2,3"}) {
    try {
      parse_lesion_spec(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << bad;
    }
  }
}

}  // namespace lungvol::phantom
