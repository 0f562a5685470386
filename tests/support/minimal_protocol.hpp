#pragma once
// The smallest valid protocol text: two classes forming the lesion band [-700, +100) HU with
// the split at -300. Tests append sections to it.
namespace lungvol::test {

inline constexpr const char* kMinimalProtocol = R"(
name = "t"
version = "1"
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
)";

}  // namespace lungvol::test
