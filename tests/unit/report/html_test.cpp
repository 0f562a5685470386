#include "report/html.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.hpp"
#include "report/png.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::report {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Html, EscapeAndBase64) {
  EXPECT_EQ(html_escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  // RFC 4648 test vectors.
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
}

TEST(Html, IndexAndScanPagesLinkEverything) {
  const std::string dir = test::temp_dir("html");
  const std::string img_dir = dir + "/P001/day0";
  std::filesystem::create_directories(img_dir);
  write_png(img_dir + "/qc_axial.png", Raster(4, 4, 1, 9));

  std::vector<ScanRecord> scans(2);
  scans[0] = {"P001",
              "day0",
              "ok",
              "",
              {{"lung_volume", 5123.25, "mL"}, {"lesion_pct", 12.5, "%"}},
              {img_dir + "/qc_axial.png"}};
  scans[1] = {"P<2>", "day 28", "failed", "no CT series in 'x'", {{"lesion_pct", NAN, "%"}}, {}};
  const std::string out = dir + "/report";
  const auto files = write_html_report(scans, out);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0], out + "/index.html");
  EXPECT_EQ(files[1], out + "/scans/0001-P001-day0.html");
  EXPECT_EQ(files[2], out + "/scans/0002-P_2_-day_28.html");

  const std::string index = read_text_file(files[0]);
  EXPECT_TRUE(contains(index, "2 scans: 1 ok, 1 failed, 0 other."));
  EXPECT_TRUE(contains(index, "<th>lung_volume (mL)</th><th>lesion_pct (%)</th>"));
  EXPECT_TRUE(contains(index, "href=\"scans/0001-P001-day0.html\">P001</a>"));
  EXPECT_TRUE(contains(index, "<td class=\"num\">5123.25</td><td class=\"num\">12.5</td>"));
  EXPECT_TRUE(contains(index, ">P&lt;2&gt;</a>"));
  EXPECT_TRUE(contains(index, "<td class=\"num\">&mdash;</td><td class=\"num\">&mdash;</td>"));
  EXPECT_FALSE(contains(index, "http"));  // self-contained: nothing fetched from a network
  EXPECT_FALSE(contains(index, "<script"));

  const std::string page = read_text_file(files[1]);
  EXPECT_TRUE(contains(page, "<img src=\"../../P001/day0/qc_axial.png\""));
  EXPECT_TRUE(contains(page, "href=\"../index.html\""));
  const std::string failed = read_text_file(files[2]);
  EXPECT_TRUE(contains(failed, "no CT series in &#39;x&#39;"));

  HtmlReportOptions embed;
  embed.embed_images = true;
  const auto files2 = write_html_report(scans, dir + "/embedded", embed);
  const std::string page2 = read_text_file(files2[1]);
  EXPECT_TRUE(contains(page2, "src=\"data:image/png;base64,iVBORw0KGgo"));  // PNG signature
}

}  // namespace
}  // namespace lungvol::report
