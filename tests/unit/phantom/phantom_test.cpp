#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "core/labels.hpp"
#include "phantom/phantom.hpp"

namespace lungvol::phantom {

void dump_axial(const Phantom& p, std::size_t k, const std::string& path) {
  const auto& g = p.ct.geom;
  std::ofstream f(path, std::ios::binary);
  f << "P5\n" << g.size[0] << " " << g.size[1] << "\n255\n";
  for (std::size_t j = 0; j < g.size[1]; ++j)
    for (std::size_t i = 0; i < g.size[0]; ++i) {
      double v = (p.ct.at(i, j, k) + 1000.0) / 1400.0 * 255;  // window -1000..400
      f.put(static_cast<char>(std::clamp(v, 0.0, 255.0)));
    }
}
void dump_coronal(const Phantom& p, std::size_t j, const std::string& path) {
  const auto& g = p.ct.geom;
  std::ofstream f(path, std::ios::binary);
  f << "P5\n" << g.size[0] << " " << g.size[2] << "\n255\n";
  for (std::size_t kk = 0; kk < g.size[2]; ++kk)
    for (std::size_t i = 0; i < g.size[0]; ++i) {
      const std::size_t k = g.size[2] - 1 - kk;
      double v = (p.ct.at(i, j, k) + 1000.0) / 1400.0 * 255;
      f.put(static_cast<char>(std::clamp(v, 0.0, 255.0)));
    }
}

TEST(Phantom, Dump) {
  if (!std::getenv("PHANTOM_DUMP")) GTEST_SKIP();
  PhantomOptions o;
  if (std::getenv("PHANTOM_TOUCH")) o.touching = true;
  const Phantom p = make_phantom(o);
  for (std::size_t k : {10, 20, 30, 40, 50, 55, 60, 70}) dump_axial(p, k, "/tmp/ph_ax" + std::to_string(k) + ".pgm");
  for (std::size_t j : {80, 96, 110, 130}) dump_coronal(p, j, "/tmp/ph_co" + std::to_string(j) + ".pgm");
}

}  // namespace lungvol::phantom
