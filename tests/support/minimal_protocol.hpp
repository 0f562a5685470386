#pragma once
// The smallest valid protocol text: two classes forming the lesion band [-700, +100) HU with
// the split at -300, and every required key (core/protocol.cpp's schema) set to the shipped
// protocols' values. Tests append the optional [calibration] section to it.
namespace lungvol::test {

inline constexpr const char* kMinimalProtocol = R"(
name = "t"
version = "1"
[lung]
air_max_hu = -500
fill_max_hu = 200
closing_radius_mm = 30
chest_wall_mm = 15
bone_min_hu = 250
min_lung_ml = 100
[densitometry]
laa_hu = [-950, -910, -856]
haa_hu = [-600, -250]
percentiles = [10, 15]
[[classes]]
name = "g"
lo_hu = -700
hi_hu = -300
[[classes]]
name = "s"
lo_hu = -300
hi_hu = 100
[lesion]
ground_glass = "g"
solid = ["s"]
min_lesion_mm3 = 20.0
vessel_radius_mm = 4.0
)";

}  // namespace lungvol::test
