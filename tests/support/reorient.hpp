#pragma once
// The 48 ways a scanner or a reformat can store one volume: every permutation of the three
// patient axes over the index axes, each axis running either way. Written independently of
// core/orientation (plain loops over every voxel), so tests of that code do not check it
// against itself.
#include <array>
#include <string>
#include <vector>

#include "core/image.hpp"

namespace lungvol::test {

struct SignedPermutation {
  std::array<int, 3> axis{0, 1, 2};  // index axis a runs along patient axis axis[a] (0 x, 1 y, 2 z)
  std::array<bool, 3> negative{false, false, false};  // ... towards -axis[a]
  std::string name() const {
    static const char pos[3] = {'L', 'P', 'S'}, neg[3] = {'R', 'A', 'I'};
    std::string s;
    for (int a = 0; a < 3; ++a) s += negative[a] ? neg[axis[a]] : pos[axis[a]];
    return s;
  }
  bool proper() const {  // determinant +1: reachable from DICOM (normal = row x column)
    int inversions = 0;
    for (int a = 0; a < 3; ++a)
      for (int b = a + 1; b < 3; ++b) inversions += axis[a] > axis[b];
    const int flips = int(negative[0]) + int(negative[1]) + int(negative[2]);
    return (inversions + flips) % 2 == 0;
  }
};

inline std::vector<SignedPermutation> all_signed_permutations() {
  std::vector<SignedPermutation> out;
  const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (const auto& p : perms) {
    for (int signs = 0; signs < 8; ++signs) {
      SignedPermutation sp;
      for (int a = 0; a < 3; ++a) {
        sp.axis[a] = p[a];
        sp.negative[a] = (signs >> a) & 1;
      }
      out.push_back(sp);
    }
  }
  return out;
}

// `canonical` (identity direction) stored with its index axes along `p`: the same voxel values
// at the same physical positions.
template <class T>
Image<T> stored_as(const Image<T>& canonical, const SignedPermutation& p) {
  const Geometry& cg = canonical.geom;
  Geometry g;
  g.direction = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  std::array<double, 3> first{0, 0, 0};  // canonical index of the stored voxel (0, 0, 0)
  for (int a = 0; a < 3; ++a) {
    const int c = p.axis[a];
    g.size[a] = cg.size[c];
    g.spacing[a] = cg.spacing[c];
    g.direction[3 * c + a] = p.negative[a] ? -1.0 : 1.0;
    first[c] = p.negative[a] ? double(cg.size[c] - 1) : 0.0;
  }
  g.origin = cg.to_physical(first[0], first[1], first[2]);
  Image<T> out(g);
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const std::size_t n[3] = {i, j, k};
        std::size_t idx[3] = {0, 0, 0};
        for (int a = 0; a < 3; ++a) {
          const int c = p.axis[a];
          idx[c] = p.negative[a] ? cg.size[c] - 1 - n[a] : n[a];
        }
        out.at(i, j, k) = canonical.at(idx[0], idx[1], idx[2]);
      }
  return out;
}

}  // namespace lungvol::test
