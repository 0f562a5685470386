#include "segmentation/components.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "core/error.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace lungvol::seg {

namespace {
template <class T>
void zeroed(VoxelVector<T>& v, std::size_t n) {
  v.resize(n);
  fill_voxels(v.data(), n, T{0});
}
}  // namespace

ComponentLabels::ComponentLabels(const Geometry& g, std::size_t max_id) : geom(g) {
  if (max_id <= std::numeric_limits<std::uint8_t>::max()) {
    zeroed(narrow_, g.voxel_count());
  } else if (max_id <= std::numeric_limits<std::uint16_t>::max()) {
    zeroed(medium_, g.voxel_count());
  } else {
    zeroed(wide_, g.voxel_count());
  }
}

void ComponentLabels::fill(std::size_t first, std::size_t last, std::uint32_t id) {
  const auto from = std::ptrdiff_t(first), to = std::ptrdiff_t(last);
  if (!narrow_.empty()) {
    std::fill(narrow_.begin() + from, narrow_.begin() + to, std::uint8_t(id));
  } else if (!medium_.empty()) {
    std::fill(medium_.begin() + from, medium_.begin() + to, std::uint16_t(id));
  } else {
    std::fill(wide_.begin() + from, wide_.begin() + to, id);
  }
}

namespace {

// The mask as runs of set voxels along i, row by row (row r = j + ny*k) in raster order, joined
// by union-find: a run is joined to the runs it overlaps in the row above (j-1) and in the same
// row of the slice below (k-1). Union-find over runs instead of voxels does the per-voxel work
// once, in order, and needs memory for the runs only.
struct Run {
  std::uint32_t begin = 0, end = 0;  // [begin, end) along i
};

struct RunSets {
  std::vector<std::size_t> row_first;  // runs of row r: [row_first[r], row_first[r + 1])
  std::vector<Run> runs;
  // parent[x] <= x; roots are the smallest run index of their set (its first run in raster
  // order), so the numbering does not depend on the order of the unions.
  std::vector<std::uint32_t> parent;
};

std::uint32_t find_root(std::vector<std::uint32_t>& parent, std::uint32_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

void unite(std::vector<std::uint32_t>& parent, std::uint32_t a, std::uint32_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a < b) {
    parent[b] = a;
  } else if (b < a) {
    parent[a] = b;
  }
}

// Joins overlapping runs of two rows (sorted, disjoint runs in each).
void join_rows(RunSets& s, std::size_t row_a, std::size_t row_b) {
  std::size_t a = s.row_first[row_a], b = s.row_first[row_b];
  const std::size_t a_end = s.row_first[row_a + 1], b_end = s.row_first[row_b + 1];
  while (a < a_end && b < b_end) {
    const Run& ra = s.runs[a];
    const Run& rb = s.runs[b];
    if (ra.end <= rb.begin) {
      ++a;
    } else if (rb.end <= ra.begin) {
      ++b;
    } else {
      unite(s.parent, std::uint32_t(a), std::uint32_t(b));
      if (ra.end < rb.end) {
        ++a;
      } else {
        ++b;
      }
    }
  }
}

RunSets find_runs(const MaskImage& mask) {
  const Geometry& g = mask.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], rows = ny * nz;
  RunSets s;
  s.row_first.assign(rows + 1, 0);
  // Count, prefix-sum, then record: two cheap passes over bytes instead of growing vectors.
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t r = 0; r < std::ptrdiff_t(rows); ++r) {
    const std::uint8_t* row = mask.data.data() + std::size_t(r) * nx;
    // Run starts: set voxels whose left neighbour is not set (no loop-carried state, so the
    // compiler vectorises it).
    std::size_t count = nx > 0 && row[0] != 0;
    for (std::size_t i = 1; i < nx; ++i) count += (row[i] != 0) & (row[i - 1] == 0);
    s.row_first[std::size_t(r) + 1] = count;
  }
  for (std::size_t r = 0; r < rows; ++r) s.row_first[r + 1] += s.row_first[r];
  const std::size_t total = s.row_first[rows];
  if (total >= std::numeric_limits<std::uint32_t>::max()) {
    throw Error(ExitCode::kProcessing,
                "connected components: mask has too many runs (" + std::to_string(total) + ")");
  }
  s.runs.resize(total);
  s.parent.resize(total);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t r = 0; r < std::ptrdiff_t(rows); ++r) {
    const std::uint8_t* row = mask.data.data() + std::size_t(r) * nx;
    std::size_t out = s.row_first[std::size_t(r)];
    std::size_t i = 0;
    while (i < nx) {
      while (i < nx && !row[i]) ++i;
      if (i == nx) break;
      const std::size_t begin = i;
      while (i < nx && row[i]) ++i;
      s.parent[out] = std::uint32_t(out);
      s.runs[out++] = Run{std::uint32_t(begin), std::uint32_t(i)};
    }
  }
  // Unions in slabs of slices, one per thread: a slab's unions only touch its own runs (roots
  // are the smallest index of a set, and every run of the set lies in the slab), so the slabs
  // need no locking; the slab borders are joined afterwards.
  int slabs = 1;
#ifdef _OPENMP
  slabs = std::max(1, std::min(omp_get_max_threads(), int(nz)));
#endif
  auto slab_start = [&](int t) { return nz * std::size_t(t) / std::size_t(slabs); };
#pragma omp parallel for schedule(static, 1)
  for (int t = 0; t < slabs; ++t) {
    const std::size_t k0 = slab_start(t), k1 = slab_start(t + 1);
    for (std::size_t k = k0; k < k1; ++k) {
      for (std::size_t j = 0; j < ny; ++j) {
        const std::size_t r = j + ny * k;
        if (j > 0) join_rows(s, r - 1, r);
        if (k > k0) join_rows(s, r - ny, r);
      }
    }
  }
  for (int t = 1; t < slabs; ++t) {
    const std::size_t k = slab_start(t);
    for (std::size_t j = 0; j < ny; ++j) join_rows(s, j + ny * (k - 1), j + ny * k);
  }
  return s;
}

// Replaces parent[] by component ids 1..n in raster order of first appearance; returns n.
// parent[x] < x for non-roots, so one pass in index order finds every run's id.
std::uint32_t number_components(std::vector<std::uint32_t>& parent) {
  std::uint32_t next = 0;
  for (std::size_t r = 0; r < parent.size(); ++r) {
    const std::uint32_t p = parent[r];
    parent[r] = p == r ? ++next : parent[p];
  }
  return next;
}

std::vector<std::uint64_t> component_sizes(const RunSets& s, std::uint32_t n) {
  std::vector<std::uint64_t> sizes(std::size_t(n) + 1, 0);
  for (std::size_t r = 0; r < s.runs.size(); ++r) sizes[s.parent[r]] += s.runs[r].end - s.runs[r].begin;
  return sizes;
}

}  // namespace

Components label_components(const MaskImage& mask) {
  const Geometry& g = mask.geom;
  const std::size_t nx = g.size[0], rows = g.size[1] * g.size[2];
  RunSets s = find_runs(mask);
  const std::uint32_t n = number_components(s.parent);
  Components out;
  out.sizes = component_sizes(s, n);
  out.labels = ComponentLabels(g, n);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t r = 0; r < std::ptrdiff_t(rows); ++r) {
    const std::size_t base = std::size_t(r) * nx;
    for (std::size_t x = s.row_first[std::size_t(r)]; x < s.row_first[std::size_t(r) + 1]; ++x) {
      out.labels.fill(base + s.runs[x].begin, base + s.runs[x].end, s.parent[x]);
    }
  }
  return out;
}

void remove_small_components(MaskImage& mask, std::uint64_t min_voxels) {
  const std::size_t nx = mask.geom.size[0], rows = mask.geom.size[1] * mask.geom.size[2];
  RunSets s = find_runs(mask);
  const std::uint32_t n = number_components(s.parent);
  const std::vector<std::uint64_t> sizes = component_sizes(s, n);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t r = 0; r < std::ptrdiff_t(rows); ++r) {
    std::uint8_t* row = mask.data.data() + std::size_t(r) * nx;
    for (std::size_t x = s.row_first[std::size_t(r)]; x < s.row_first[std::size_t(r) + 1]; ++x) {
      if (sizes[s.parent[x]] < min_voxels) {
        std::fill(row + s.runs[x].begin, row + s.runs[x].end, std::uint8_t(0));
      }
    }
  }
}

}  // namespace lungvol::seg
