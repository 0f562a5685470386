#include "batch/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include <fmt/format.h>

namespace lungvol::batch {
namespace {

constexpr double kWidth = 760, kPanelHeight = 260, kTop = 50, kLeft = 80, kRight = 170,
                 kGap = 40, kBottom = 55;
const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string tick_label(double v, bool log_y) {
  if (log_y) return fmt::format("{:g}", v);
  if (std::abs(v) < 1e-12) return "0";
  return fmt::format("{:g}", v);
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> out;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    out.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return out;
}

std::string svg_plot(const std::string& title, const std::string& x_label,
                     const std::vector<PlotPanel>& panels) {
  const double plot_w = kWidth - kLeft - kRight;
  const double height = kTop + static_cast<double>(panels.size()) * (kPanelHeight + kGap) + kBottom;
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  for (const auto& p : panels) {
    for (const auto& s : p.series) {
      for (double x : s.x) {
        x_lo = std::min(x_lo, x);
        x_hi = std::max(x_hi, x);
      }
    }
  }
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1;
  if (x_hi == x_lo) x_lo -= 1, x_hi += 1;
  auto sx = [&](double x) { return kLeft + (x - x_lo) / (x_hi - x_lo) * plot_w; };

  std::ostringstream o;
  o << fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "viewBox=\"0 0 {:.0f} {:.0f}\" font-family=\"sans-serif\" font-size=\"12\">\n",
      kWidth, height, kWidth, height);
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << fmt::format("<text x=\"{:.1f}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
                   kWidth / 2, esc(title));

  for (std::size_t pi = 0; pi < panels.size(); ++pi) {
    const PlotPanel& p = panels[pi];
    const double top = kTop + static_cast<double>(pi) * (kPanelHeight + kGap);
    const double bottom = top + kPanelHeight;
    auto tr = [&](double v) { return p.log_y ? std::log10(std::max(v, 1e-300)) : v; };
    double y_lo = std::numeric_limits<double>::infinity(), y_hi = -y_lo;
    auto take = [&](const std::optional<double>& v) {
      if (v && std::isfinite(*v) && (!p.log_y || *v > 0)) {
        y_lo = std::min(y_lo, tr(*v));
        y_hi = std::max(y_hi, tr(*v));
      }
    };
    for (const auto& s : p.series) {
      for (const auto& v : s.y) take(v);
      for (const auto& v : s.band_lo) take(v);
      for (const auto& v : s.band_hi) take(v);
    }
    if (p.reference_y) take(p.reference_y);
    if (p.log_y) {
      y_hi = std::max(y_hi, 0.0);  // p-values: always show up to 1
      y_lo = std::floor(std::min(y_lo, -2.0));
    }
    if (!std::isfinite(y_lo)) y_lo = 0, y_hi = 1;
    if (y_hi == y_lo) y_lo -= 1, y_hi += 1;
    const double pad = p.log_y ? 0 : 0.05 * (y_hi - y_lo);
    y_lo -= pad;
    y_hi += pad;
    auto sy = [&](double v) { return bottom - (tr(v) - y_lo) / (y_hi - y_lo) * kPanelHeight; };

    // Frame, grid and ticks.
    o << fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
                     "fill=\"none\" stroke=\"black\"/>\n",
                     kLeft, top, plot_w, kPanelHeight);
    std::vector<double> yt;
    if (p.log_y) {
      for (double e = std::ceil(y_lo); e <= y_hi + 1e-9; e += 1) yt.push_back(std::pow(10.0, e));
    } else {
      yt = nice_ticks(y_lo, y_hi, 5);
    }
    for (double v : yt) {
      const double y = sy(v);
      o << fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                       "stroke=\"#dddddd\"/>\n",
                       kLeft, y, kLeft + plot_w, y);
      o << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                       kLeft - 6, y + 4, tick_label(v, p.log_y));
    }
    for (double v : nice_ticks(x_lo, x_hi, 8)) {
      const double x = sx(v);
      o << fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                       "stroke=\"#dddddd\"/>\n",
                       x, top, x, bottom);
      o << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:g}</text>\n", x,
                       bottom + 16, v);
    }
    o << fmt::format("<text transform=\"translate({:.1f},{:.1f}) rotate(-90)\" "
                     "text-anchor=\"middle\">{}</text>\n",
                     kLeft - 55, top + kPanelHeight / 2, esc(p.y_label));
    if (p.reference_y) {
      const double y = sy(*p.reference_y);
      o << fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                       "stroke=\"black\" stroke-dasharray=\"6,4\"/>\n",
                       kLeft, y, kLeft + plot_w, y);
      if (!p.reference_label.empty()) {
        o << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", kLeft + plot_w + 6, y + 4,
                         esc(p.reference_label));
      }
    }
    for (std::size_t si = 0; si < p.series.size(); ++si) {
      const PlotSeries& s = p.series[si];
      const char* color = kColors[si % (sizeof kColors / sizeof kColors[0])];
      // Band: upper edge left to right, lower edge back, where both are known.
      std::string upper, lower;
      for (std::size_t i = 0; i < s.x.size() && i < s.band_lo.size() && i < s.band_hi.size(); ++i) {
        if (!s.band_lo[i] || !s.band_hi[i]) continue;
        upper += fmt::format("{:.1f},{:.1f} ", sx(s.x[i]), sy(*s.band_hi[i]));
      }
      for (std::size_t i = std::min({s.x.size(), s.band_lo.size(), s.band_hi.size()}); i-- > 0;) {
        if (!s.band_lo[i] || !s.band_hi[i]) continue;
        lower += fmt::format("{:.1f},{:.1f} ", sx(s.x[i]), sy(*s.band_lo[i]));
      }
      if (!upper.empty()) {
        o << fmt::format("<polygon points=\"{}{}\" fill=\"{}\" fill-opacity=\"0.18\" "
                         "stroke=\"none\"/>\n",
                         upper, lower, color);
      }
      std::string line;
      for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!s.y[i] || (p.log_y && *s.y[i] <= 0)) continue;
        const double x = sx(s.x[i]), y = sy(*s.y[i]);
        line += fmt::format("{:.1f},{:.1f} ", x, y);
        o << fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n", x, y,
                         color);
      }
      if (!line.empty()) {
        o << fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" "
                         "stroke-width=\"1.5\"/>\n",
                         line, color);
      }
      if (pi == 0) {
        const double ly = top + 14 + 18 * static_cast<double>(si);
        o << fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                         "stroke=\"{}\" stroke-width=\"2\"/>\n",
                         kLeft + plot_w + 10, ly, kLeft + plot_w + 30, ly, color);
        o << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", kLeft + plot_w + 34,
                         ly + 4, esc(s.label));
      }
    }
  }
  o << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                   kLeft + plot_w / 2, height - 14, esc(x_label));
  o << "</svg>\n";
  return o.str();
}

namespace {
double svg_attribute(const std::string& svg, const char* name) {
  const std::string key = std::string(" ") + name + "=\"";
  const auto at = svg.find(key);
  return at == std::string::npos ? 0.0 : std::atof(svg.c_str() + at + key.size());
}
}  // namespace

std::string svg_grid(const std::string& title, const std::vector<std::string>& cells,
                     std::size_t columns) {
  columns = std::max<std::size_t>(1, columns);
  double cell_w = 0, cell_h = 0;
  for (const auto& c : cells) {
    cell_w = std::max(cell_w, svg_attribute(c, "width"));
    cell_h = std::max(cell_h, svg_attribute(c, "height"));
  }
  const std::size_t rows = (cells.size() + columns - 1) / columns;
  const double top = 40;
  const double width = cell_w * static_cast<double>(columns);
  const double height = top + cell_h * static_cast<double>(rows);
  std::ostringstream o;
  o << fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "viewBox=\"0 0 {:.0f} {:.0f}\" font-family=\"sans-serif\" font-size=\"12\">\n",
      width, height, width, height);
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << fmt::format("<text x=\"{:.1f}\" y=\"26\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
                   width / 2, esc(title));
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const double x = cell_w * static_cast<double>(i % columns);
    const double y = top + cell_h * static_cast<double>(i / columns);
    // A nested <svg> placed at (x, y): the cell's own coordinate system is kept.
    std::string cell = cells[i];
    const auto open = cell.find("<svg ");
    if (open != std::string::npos) {
      cell.insert(open + 5, fmt::format("x=\"{:.0f}\" y=\"{:.0f}\" ", x, y));
    }
    o << cell;
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace lungvol::batch
