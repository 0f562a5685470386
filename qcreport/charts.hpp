#pragma once
// Small inline SVG charts for the QC report (no script, no external resources; inline <svg>
// in HTML5 needs no namespace declaration, so the report holds no URL at all).
#include <optional>
#include <string>
#include <vector>

namespace lungvol::qcreport {

struct LineSeries {
  std::string label;
  std::string colour;                    // CSS colour, e.g. "#c62828"
  std::vector<std::optional<double>> y;  // one per x label; gaps where nullopt
};

// A line chart over categorical x positions (visits), points marked, y from 0 (or the data
// minimum when negative) to a nice maximum.
std::string line_chart_svg(const std::vector<std::string>& x_labels,
                           const std::vector<LineSeries>& series, const std::string& y_label,
                           int width, int height, bool legend);

struct BoxGroup {
  std::string category;  // x group, e.g. "day10"
  std::string label;     // box within the group, e.g. the arm
  std::string colour;
  std::vector<double> values;
};

// Box plots (median, quartiles, whiskers to the most extreme value within 1.5 IQR of the
// box), every value drawn as a point, groups side by side per category, dashed line at 0.
std::string box_plot_svg(const std::string& title, const std::vector<BoxGroup>& boxes,
                         const std::string& y_label, int width, int height);

// Quantile of `values` (any order) by linear interpolation between order statistics (R's
// type 7, the default of R and numpy). NaN for an empty vector.
double quantile(std::vector<double> values, double p);

// A stable colour per index (colour-blind friendly palette).
std::string palette_colour(std::size_t n);

}  // namespace lungvol::qcreport
