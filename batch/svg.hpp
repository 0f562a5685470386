#pragma once
// A minimal line-plot writer (SVG 1.1 text): stacked panels sharing an x axis, each with
// lines, optional shaded bands, an optional horizontal reference line and a log-10 y option.
#include <optional>
#include <string>
#include <vector>

namespace lungvol::batch {

struct PlotSeries {
  std::string label;
  std::vector<double> x;
  std::vector<std::optional<double>> y, band_lo, band_hi;  // band optional (empty vectors)
};

struct PlotPanel {
  std::string y_label;
  std::vector<PlotSeries> series;
  std::optional<double> reference_y;  // dashed line, e.g. 0 or p = 0.05
  std::string reference_label;
  bool log_y = false;
};

std::string svg_plot(const std::string& title, const std::string& x_label,
                     const std::vector<PlotPanel>& panels);

// Complete svg_plot() pictures as a grid of `columns` cells per row (small multiples), in one
// SVG under one title; each cell keeps its own axes.
std::string svg_grid(const std::string& title, const std::vector<std::string>& cells,
                     std::size_t columns);

// "Nice" tick positions covering [lo, hi] (1, 2, 5 x 10^k steps).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace lungvol::batch
