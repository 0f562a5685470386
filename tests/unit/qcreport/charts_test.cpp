#include "qcreport/charts.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>

namespace lungvol::qcreport {
namespace {

// Reference values: R's quantile(x, p) (type 7).
TEST(QcCharts, QuantileMatchesRType7) {
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4}, 0.25), 1.75);  // quantile(1:4, .25)
  EXPECT_DOUBLE_EQ(quantile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4, 10}, 0.75), 4.0);
  EXPECT_DOUBLE_EQ(quantile({-30, -10, -20}, 0.0), -30.0);
  EXPECT_DOUBLE_EQ(quantile({-30, -10, -20}, 1.0), -10.0);
  EXPECT_DOUBLE_EQ(quantile({7}, 0.25), 7.0);
  EXPECT_TRUE(std::isnan(quantile({}, 0.5)));
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(QcCharts, BoxPlotDrawsOneBoxPerGroupAndEveryPoint) {
  const std::string svg = box_plot_svg("lesion",
                                       {{"day10", "MSC", "#0072B2", {-30, -20, -25, -40}},
                                        {"day10", "placebo", "#D55E00", {-5, 0, -10}},
                                        {"day28", "MSC", "#0072B2", {-60, -50}}},
                                       "relative change (%)", 400, 300);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(count(svg, "</svg>"), 1u);
  EXPECT_EQ(count(svg, "<circle"), 9u);                         // 4 + 3 + 2 subjects
  EXPECT_EQ(count(svg, "fill-opacity=\"0.35\""), 5u);           // 3 boxes + 2 legend swatches
  EXPECT_NE(svg.find("n=4, median -27.5"), std::string::npos);  // median(-30,-20,-25,-40)
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);   // zero line: data span 0
  EXPECT_EQ(svg.find("http"), std::string::npos);
}

TEST(QcCharts, LineChartBreaksAtMissingVisits) {
  const std::string svg =
      line_chart_svg({"baseline", "day10", "day28"}, {{"lesion", "#000", {2.0, std::nullopt, 1.0}}},
                     "% of lung", 200, 80, false);
  EXPECT_EQ(count(svg, "<circle"), 2u);
  // Two separate "M" moves, no solid line across the missing day10; one dashed line instead.
  const std::regex path("<path d=\"M[0-9.,]+ M[0-9.,]+ \"");
  EXPECT_TRUE(std::regex_search(svg, path)) << svg;
  EXPECT_EQ(count(svg, "stroke-dasharray=\"3 3\""), 1u);
}

}  // namespace
}  // namespace lungvol::qcreport
