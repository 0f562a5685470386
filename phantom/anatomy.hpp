#pragma once
// The phantom's anatomy as analytic shapes in LPS mm, laid out to fit the field of view.
// Internal to the phantom library (tests use it to probe geometry).
#include <cstdint>
#include <vector>

#include "core/image.hpp"
#include "phantom/phantom.hpp"
#include "phantom/shapes.hpp"

namespace lungvol::phantom {

// One lung: a half-superellipsoid (x^4 + y^4 + z^4 <= 1 in its semi-axes) above a domed
// diaphragm, clipped by the thoracic cavity. Its cross-section is squarish and keeps nearly its
// full size up to the upper third before it rounds off into the apex, so that, as in a real
// chest, the lung fills the cavity, its corners and the paravertebral gutter, and meets the
// chest wall all round at every level below the apex. (An ellipsoid floated free of the
// anterior and posterior wall above mid-height and left the gutters empty.)
struct LungShape {
  Ellipsoid shape;  // centre z = base (deepest diaphragm point)
  double dome = 0;  // diaphragm dome height above the base at the shape's axis
  double side = 1;  // -1 right (towards -x), +1 left
  bool contains(Vec3 p) const {
    if (p.z < shape.c.z) return false;
    const double dx = (p.x - shape.c.x) / shape.r.x, dy = (p.y - shape.c.y) / shape.r.y;
    const double dz = (p.z - shape.c.z) / shape.r.z;
    const double r2 = dx * dx + dy * dy;
    const double dx2 = dx * dx, dy2 = dy * dy, dz2 = dz * dz;
    if (dx2 * dx2 + dy2 * dy2 + dz2 * dz2 > 1.0) return false;
    return p.z >= shape.c.z + dome * std::max(0.0, 1.0 - r2);
  }
};

struct Anatomy {
  Geometry geom;
  double scale_xy = 1, scale_z = 1;
  // Chest wall, outside in: skin/fat, muscle, ribs, a thin soft-tissue layer, then the cavity.
  Ellipse2 body, muscle, rib_outer, rib_inner, cavity;
  double rib_period = 0, rib_height = 0, rib_z_lo = 0, rib_z_hi = 0;
  // Table below the body (posterior): top surface y = table_y - table_curve * x^2.
  double table_y = 0, table_curve = 0, table_thickness = 0, table_half_width = 0;
  // Spine (posterior midline).
  double spine_y = 0, vertebra_r = 0, cortex = 0, canal_y = 0, canal_r = 0;
  Ellipse2 spinous;
  double vertebra_period = 0, disc_height = 0;
  Ellipse2 sternum;
  double sternum_z_lo = 0, sternum_z_hi = 0;
  // Mediastinum: a midline band, the heart and the aorta keep the lungs apart.
  double mediastinum_half_width = 0;
  Ellipsoid heart;
  std::vector<Tube> aorta;
  double organ_margin = 0;  // pericardium / adventitia kept free of lung
  LungShape right_lung, left_lung;
  bool touching = false;
  Ellipsoid junction;  // anterior junction (both lungs, split at x = 0) when touching
  // Airways.
  Tube trachea;
  std::vector<Tube> bronchi;  // right main, left main
  double airway_wall = 0;
  std::vector<Tube> vessels;
  // Lung box per side: x from medial (mediastinum) to lateral (cavity), y and z extents.
  double lung_box_medial = 0, lung_box_lateral = 0;
  double lung_z_top = 0;
};

Anatomy build_anatomy(const Geometry& geom, const PhantomOptions& options);

// The rib cage narrows towards the apices with the lungs, as the upper ribs do: at height z the
// cavity and the rib ellipses are scaled about their centre by the larger of the two lungs'
// cross-section scale there (never below kMinCageScale), so the lungs meet the chest wall all
// the way up.
inline constexpr double kMinCageScale = 0.45;
double cage_scale(const Anatomy& a, double z);
Ellipse2 scaled(const Ellipse2& e, double f);

// Lung membership of a point ignoring airways: labels::kRightLung, kLeftLung or 0.
std::uint8_t lung_side_at(const Anatomy& a, Vec3 p);
bool in_airway_lumen(const Anatomy& a, Vec3 p);
// Bounding box of both lungs.
Box lungs_box(const Anatomy& a);
const LungShape& lung(const Anatomy& a, LungSide side);

struct PlacedLesion {
  LesionSpec spec;
  Ellipsoid shape;  // after scaling
};
// Places the lesions (default or custom) in the anatomy; semi-axes times lesion_scale.
std::vector<PlacedLesion> place_lesions(const Anatomy& a, const PhantomOptions& options);

// Grid of the phantom for these options: identity direction, volume centred on LPS origin.
Geometry phantom_geometry(const PhantomOptions& options);

}  // namespace lungvol::phantom
