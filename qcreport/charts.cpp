#include "qcreport/charts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "batch/svg.hpp"
#include "report/html.hpp"

namespace lungvol::qcreport {
namespace {

std::string esc(const std::string& s) { return report::html_escape(s); }

std::string tick_label(double v) {
  if (std::abs(v) < 1e-12) return "0";
  return fmt::format("{:g}", v);
}

struct Frame {
  double left, top, right, bottom;  // plot area in pixels
  double lo, hi;                    // y range
  double y(double v) const { return bottom - (v - lo) / (hi - lo) * (bottom - top); }
};

// The y axis (ticks, grid lines, label); returns the y range actually used.
std::string y_axis(Frame& f, double lo, double hi, const std::string& y_label) {
  if (!(hi > lo)) {
    lo -= 1;
    hi += 1;
  }
  const std::vector<double> ticks = batch::nice_ticks(lo, hi, 5);
  f.lo = std::min(lo, ticks.front());
  f.hi = std::max(hi, ticks.back());
  std::string s;
  for (double t : ticks) {
    const double y = f.y(t);
    s += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"10\">{}</text>\n",
        f.left, y, f.right, y, f.left - 4, y + 3, tick_label(t));
  }
  s += fmt::format(
      "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#444\"/>"
      "<text x=\"10\" y=\"{3:.1f}\" font-size=\"10\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 10 {3:.1f})\">{4}</text>\n",
      f.left, f.top, f.bottom, (f.top + f.bottom) / 2, esc(y_label));
  return s;
}

std::string svg_open(int width, int height, const std::string& title) {
  return fmt::format(
      "<svg class=\"chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" role=\"img\" "
      "font-family=\"sans-serif\"><title>{2}</title>\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"#fff\"/>\n",
      width, height, esc(title));
}

}  // namespace

std::string palette_colour(std::size_t n) {
  // Okabe-Ito: distinguishable with the common colour-vision deficiencies.
  static const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                   "#E69F00", "#56B4E9", "#000000", "#F0E442"};
  return kColours[n % (sizeof(kColours) / sizeof(kColours[0]))];
}

double quantile(std::vector<double> values, double p) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double h = (static_cast<double>(values.size()) - 1) * std::clamp(p, 0.0, 1.0);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (h - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

std::string line_chart_svg(const std::vector<std::string>& x_labels,
                           const std::vector<LineSeries>& series, const std::string& y_label,
                           int width, int height, bool legend) {
  double lo = 0, hi = 0;
  bool any = false;
  for (const auto& s : series) {
    for (const auto& y : s.y) {
      if (!y || !std::isfinite(*y)) continue;
      lo = std::min(lo, *y);
      hi = std::max(hi, *y);
      any = true;
    }
  }
  if (!any) hi = 1;
  const double legend_h = legend ? 16 : 0;
  Frame f{42, 8 + legend_h, static_cast<double>(width) - 10, static_cast<double>(height) - 22, lo,
          hi};
  std::string s = svg_open(width, height, y_label + " by visit");
  s += y_axis(f, lo, hi, y_label);
  const std::size_t n = x_labels.size();
  auto x_at = [&](std::size_t i) {
    return n <= 1
               ? (f.left + f.right) / 2
               : f.left + 14 +
                     (f.right - f.left - 28) * static_cast<double>(i) / static_cast<double>(n - 1);
  };
  s += fmt::format(
      "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#444\"/>\n", f.left,
      f.bottom, f.right, f.bottom);
  for (std::size_t i = 0; i < n; ++i) {
    s += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"10\">{}</text>\n",
        x_at(i), f.bottom + 13, esc(x_labels[i]));
  }
  double lx = f.left;
  for (const auto& ser : series) {
    // Consecutive measured visits are joined by a solid line; across a missing or failed
    // visit a dashed line joins the measured neighbours, so the gap stays visible.
    std::string path;
    bool pen = false;
    std::optional<std::size_t> last;
    for (std::size_t i = 0; i < ser.y.size() && i < n; ++i) {
      if (!ser.y[i] || !std::isfinite(*ser.y[i])) {
        pen = false;
        continue;
      }
      if (!pen && last) {
        s += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
            "stroke-dasharray=\"3 3\"/>\n",
            x_at(*last), f.y(*ser.y[*last]), x_at(i), f.y(*ser.y[i]), ser.colour);
      }
      last = i;
      path += fmt::format("{}{:.1f},{:.1f} ", pen ? "L" : "M", x_at(i), f.y(*ser.y[i]));
      pen = true;
      s += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"><title>{} {}: "
          "{:.3g}</title></circle>\n",
          x_at(i), f.y(*ser.y[i]), ser.colour, esc(ser.label), esc(x_labels[i]), *ser.y[i]);
    }
    if (!path.empty()) {
      s += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n", path,
                       ser.colour);
    }
    if (legend) {
      s += fmt::format(
          "<rect x=\"{:.1f}\" y=\"4\" width=\"10\" height=\"3\" fill=\"{}\"/>"
          "<text x=\"{:.1f}\" y=\"10\" font-size=\"10\">{}</text>\n",
          lx, ser.colour, lx + 13, esc(ser.label));
      lx += 20 + 6.0 * static_cast<double>(ser.label.size());
    }
  }
  return s + "</svg>";
}

std::string box_plot_svg(const std::string& title, const std::vector<BoxGroup>& boxes,
                         const std::string& y_label, int width, int height) {
  std::vector<std::string> categories, labels;
  double lo = 0, hi = 0;
  for (const auto& b : boxes) {
    if (std::find(categories.begin(), categories.end(), b.category) == categories.end()) {
      categories.push_back(b.category);
    }
    if (std::find(labels.begin(), labels.end(), b.label) == labels.end()) labels.push_back(b.label);
    for (double v : b.values) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  Frame f{48, 38, static_cast<double>(width) - 10, static_cast<double>(height) - 24, lo, hi};
  std::string s = svg_open(width, height, title);
  s += fmt::format(
      "<text x=\"{:.1f}\" y=\"14\" font-size=\"12\" font-weight=\"bold\" "
      "text-anchor=\"middle\">{}</text>\n",
      width / 2.0, esc(title));
  s += y_axis(f, lo, hi, y_label);
  if (f.lo <= 0 && f.hi >= 0) {
    s += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" "
        "stroke=\"#444\" stroke-dasharray=\"4 3\"/>\n",
        f.left, f.y(0), f.right);
  }
  // Legend: one swatch per box label (arm), colours as given.
  double lx = f.left;
  for (const auto& label : labels) {
    const auto it = std::find_if(boxes.begin(), boxes.end(),
                                 [&](const BoxGroup& b) { return b.label == label; });
    s += fmt::format(
        "<rect x=\"{:.1f}\" y=\"21\" width=\"10\" height=\"10\" fill=\"{}\" "
        "fill-opacity=\"0.35\" stroke=\"{}\"/><text x=\"{:.1f}\" y=\"30\" "
        "font-size=\"11\">{}</text>\n",
        lx, it->colour, it->colour, lx + 14, esc(label));
    lx += 24 + 7.0 * static_cast<double>(label.size());
  }
  const double group_w =
      (f.right - f.left) / static_cast<double>(std::max<std::size_t>(1, categories.size()));
  const double box_w =
      std::min(60.0, group_w * 0.7 / static_cast<double>(std::max<std::size_t>(1, labels.size())));
  for (std::size_t c = 0; c < categories.size(); ++c) {
    const double cx = f.left + group_w * (static_cast<double>(c) + 0.5);
    s += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"11\">{}</text>\n", cx,
        f.bottom + 15, esc(categories[c]));
    for (std::size_t l = 0; l < labels.size(); ++l) {
      const auto it = std::find_if(boxes.begin(), boxes.end(), [&](const BoxGroup& b) {
        return b.category == categories[c] && b.label == labels[l];
      });
      if (it == boxes.end() || it->values.empty()) continue;
      const double x =
          cx +
          (static_cast<double>(l) - (static_cast<double>(labels.size()) - 1) / 2) * box_w * 1.25;
      const double q1 = quantile(it->values, 0.25), med = quantile(it->values, 0.5),
                   q3 = quantile(it->values, 0.75);
      const double iqr = q3 - q1;
      double wlo = q1, whi = q3;
      for (double v : it->values) {
        if (v >= q1 - 1.5 * iqr) wlo = std::min(wlo, v);
        if (v <= q3 + 1.5 * iqr) whi = std::max(whi, v);
      }
      const std::string& col = it->colour;
      s += fmt::format("<g><title>{} {}: n={}, median {:.3g}, IQR {:.3g} to {:.3g}</title>\n",
                       esc(it->label), esc(it->category), it->values.size(), med, q1, q3);
      s += fmt::format(
          "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\"/>"
          "<line x1=\"{0:.1f}\" y1=\"{4:.1f}\" x2=\"{0:.1f}\" y2=\"{5:.1f}\" stroke=\"{3}\"/>\n",
          x, f.y(whi), f.y(q3), col, f.y(q1), f.y(wlo));
      for (double w : {wlo, whi}) {
        s += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\"/>",
            x - box_w / 4, f.y(w), x + box_w / 4, f.y(w), col);
      }
      s += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
          "fill=\"{}\" fill-opacity=\"0.35\" stroke=\"{}\"/>"
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
          "stroke-width=\"2\"/>\n",
          x - box_w / 2, f.y(q3), box_w, std::max(0.5, f.y(q1) - f.y(q3)), col, col, x - box_w / 2,
          f.y(med), x + box_w / 2, f.y(med), col);
      // Points spread deterministically across the box so ties stay visible.
      for (std::size_t i = 0; i < it->values.size(); ++i) {
        const double jitter =
            it->values.size() == 1
                ? 0
                : (static_cast<double>(i) / static_cast<double>(it->values.size() - 1) - 0.5) *
                      box_w * 0.6;
        s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>", x + jitter,
                         f.y(it->values[i]), col);
      }
      s += "</g>\n";
    }
  }
  s += fmt::format(
      "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#444\"/>\n", f.left,
      f.bottom, f.right, f.bottom);
  return s + "</svg>";
}

}  // namespace lungvol::qcreport
