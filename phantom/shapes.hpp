#pragma once
// Analytic shapes in LPS millimetres. The phantom is rasterised by testing voxel centres
// against these shapes inside each shape's bounding box, so truth voxel counts are exact.
#include <algorithm>
#include <cmath>

namespace lungvol::phantom {

struct Vec3 {
  double x = 0, y = 0, z = 0;
};
inline Vec3 operator+(Vec3 a, Vec3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
inline Vec3 operator-(Vec3 a, Vec3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
inline Vec3 operator*(Vec3 a, double s) { return {a.x * s, a.y * s, a.z * s}; }
inline double dot(Vec3 a, Vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline double norm(Vec3 a) { return std::sqrt(dot(a, a)); }
inline Vec3 normalized(Vec3 a) { return a * (1.0 / norm(a)); }
inline Vec3 cross(Vec3 a, Vec3 b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}

struct Box {
  Vec3 lo, hi;
};
inline Box grow(const Box& b, double d) {
  return {{b.lo.x - d, b.lo.y - d, b.lo.z - d}, {b.hi.x + d, b.hi.y + d, b.hi.z + d}};
}
inline Box unite(const Box& a, const Box& b) {
  return {{std::min(a.lo.x, b.lo.x), std::min(a.lo.y, b.lo.y), std::min(a.lo.z, b.lo.z)},
          {std::max(a.hi.x, b.hi.x), std::max(a.hi.y, b.hi.y), std::max(a.hi.z, b.hi.z)}};
}

// Axis-aligned ellipsoid.
struct Ellipsoid {
  Vec3 c;  // centre
  Vec3 r;  // semi-axes
  // Normalised squared radius: <= 1 inside.
  double rho2(Vec3 p) const {
    const double dx = (p.x - c.x) / r.x, dy = (p.y - c.y) / r.y, dz = (p.z - c.z) / r.z;
    return dx * dx + dy * dy + dz * dz;
  }
  bool contains(Vec3 p) const { return rho2(p) <= 1.0; }
  Box box() const { return {c - r, c + r}; }
  double volume_mm3() const { return 4.0 / 3.0 * M_PI * r.x * r.y * r.z; }
  Ellipsoid dilated(double d) const { return {c, {r.x + d, r.y + d, r.z + d}}; }
};

// A tube around segment a-b whose radius varies linearly from ra to rb (vessels, airways).
struct Tube {
  Vec3 a, b;
  double ra = 1, rb = 1;
  // Distance from p to the axis and the tube radius at the closest axis point.
  bool contains(Vec3 p, double extra = 0.0) const {
    const Vec3 ab = b - a;
    const double len2 = dot(ab, ab);
    double t = len2 > 0 ? dot(p - a, ab) / len2 : 0.0;
    t = std::clamp(t, 0.0, 1.0);
    const Vec3 d = p - (a + ab * t);
    const double r = ra + (rb - ra) * t + extra;
    return dot(d, d) <= r * r;
  }
  Box box(double extra = 0.0) const {
    const double r = std::max(ra, rb) + extra;
    return {{std::min(a.x, b.x) - r, std::min(a.y, b.y) - r, std::min(a.z, b.z) - r},
            {std::max(a.x, b.x) + r, std::max(a.y, b.y) + r, std::max(a.z, b.z) + r}};
  }
};

// Ellipse in the axial plane (elliptic cylinder when unbounded in z).
struct Ellipse2 {
  double cx = 0, cy = 0, a = 1, b = 1;
  double rho2(double x, double y) const {
    const double dx = (x - cx) / a, dy = (y - cy) / b;
    return dx * dx + dy * dy;
  }
  bool contains(double x, double y) const { return rho2(x, y) <= 1.0; }
  Ellipse2 offset(double d) const { return {cx, cy, a + d, b + d}; }
};

}  // namespace lungvol::phantom
