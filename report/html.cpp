#include "report/html.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <string_view>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "report/qc_images.hpp"

namespace fs = std::filesystem;

namespace lungvol::report {
namespace {

constexpr const char* kCss = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}
table{border-collapse:collapse;background:#fff;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#eee;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#f6f6f6}
.status{font-weight:600;padding:.1em .5em;border-radius:.3em;color:#fff}
.ok{background:#2e7d32}.failed{background:#c62828}.other{background:#ef6c00}
.msg{color:#c62828;white-space:pre-wrap}
figure{display:inline-block;margin:.5em;vertical-align:top;text-align:center}
figure img{max-width:512px;border:1px solid #999;image-rendering:pixelated}
figcaption{font-size:.8em;color:#555}
.legend span{display:inline-block;margin-right:1.2em;font-size:.85em}
.swatch{display:inline-block;width:1em;height:1em;vertical-align:middle;margin-right:.3em;border:1px solid #666}
)css";

std::string status_class(const std::string& status) {
  if (status == "ok") return "ok";
  if (status == "failed" || status == "error") return "failed";
  return "other";
}

std::string format_value(double v) {
  if (std::isnan(v)) return "&mdash;";
  return fmt::format("{:.6g}", v);
}


std::string page_head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
         html_escape(title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n";
}

std::string swatch(Rgb c, const char* label) {
  return fmt::format("<span><i class=\"swatch\" style=\"background:rgb({},{},{})\"></i>{}</span>",
                     c.r, c.g, c.b, label);
}

}  // namespace

std::string qc_image_legend_html() {
  return "<p class=\"legend\">" + swatch(kRightLungColour, "right lung contour") +
         swatch(kLeftLungColour, "left lung contour") + swatch(kAirwayColour, "airway contour") +
         swatch(kGroundGlassColour, "ground-glass lesion") + swatch(kSolidColour, "solid lesion") +
         "</p>\n";
}

namespace {

std::string image_src(const std::string& image, const fs::path& page_dir, bool embed) {
  if (embed) return "data:image/png;base64," + base64_encode(read_text_file(image));
  const fs::path abs = fs::absolute(image).lexically_normal();
  const fs::path rel = abs.lexically_relative(fs::absolute(page_dir).lexically_normal());
  // Relative URLs use '/', and characters like '#' or '%' in names must be escaped.
  std::string url;
  for (char c : (rel.empty() ? abs : rel).generic_string()) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || std::string_view("-_.~/").find(c) != std::string_view::npos) {
      url.push_back(c);
    } else {
      url += fmt::format("%{:02X}", u);
    }
  }
  return url;
}

std::string scan_page(const ScanRecord& s, std::size_t n, std::size_t total,
                      const fs::path& page_dir, const HtmlReportOptions& options) {
  const std::string name = s.subject + " / " + s.visit;
  std::string h = page_head(name + " - " + options.title);
  h += "<p><a href=\"../index.html\">&larr; all scans</a> &middot; scan " + std::to_string(n + 1) +
       " of " + std::to_string(total) + "</p>\n";
  h += "<h1>" + html_escape(name) + " <span class=\"status " + status_class(s.status) + "\">" +
       html_escape(s.status) + "</span></h1>\n";
  if (!s.message.empty()) h += "<p class=\"msg\">" + html_escape(s.message) + "</p>\n";
  if (!s.metrics.empty()) {
    h += "<h2>Metrics</h2>\n<table>\n<tr><th>metric</th><th>value</th><th>unit</th></tr>\n";
    for (const auto& m : s.metrics) {
      h += "<tr><td>" + html_escape(m.name) + "</td><td class=\"num\">" + format_value(m.value) +
           "</td><td>" + html_escape(m.unit) + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  if (!s.qc_images.empty()) {
    h += "<h2>QC images</h2>\n" + qc_image_legend_html();
    for (const auto& img : s.qc_images) {
      const std::string caption = fs::path(img).filename().string();
      h += "<figure><img src=\"" + html_escape(image_src(img, page_dir, options.embed_images)) +
           "\" alt=\"" + html_escape(caption) + "\"><figcaption>" + html_escape(caption) +
           "</figcaption></figure>\n";
    }
  }
  h += "</body>\n</html>\n";
  return h;
}

}  // namespace

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.';
    out.push_back(keep ? c : '_');
  }
  // A leading dot would hide the file; an empty name would be no file.
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string base64_encode(const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t n = 0;
  for (; n + 3 <= bytes.size(); n += 3) {
    const std::uint32_t v =
        static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[n]) << 16) |
        static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[n + 1]) << 8) |
        static_cast<unsigned char>(bytes[n + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const std::size_t rest = bytes.size() - n;
  if (rest > 0) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[n]) << 16);
    if (rest == 2) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[n + 1]) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::vector<std::string> write_html_report(const std::vector<ScanRecord>& scans,
                                           const std::string& outdir,
                                           const HtmlReportOptions& options) {
  const fs::path root(outdir);
  const fs::path scan_dir = root / "scans";
  ensure_directory(scan_dir.string());

  std::vector<std::string> metric_names;
  for (const auto& s : scans) {
    for (const auto& m : s.metrics) {
      if (std::find(metric_names.begin(), metric_names.end(), m.name) == metric_names.end()) {
        metric_names.push_back(m.name);
      }
    }
  }

  std::vector<std::string> written{(root / "index.html").string()};
  std::string rows;
  std::map<std::string, std::size_t> by_status;
  for (std::size_t n = 0; n < scans.size(); ++n) {
    const ScanRecord& s = scans[n];
    ++by_status[status_class(s.status)];
    const std::string file =
        fmt::format("{:04d}-{}-{}.html", n + 1, slug(s.subject), slug(s.visit));
    const fs::path page = scan_dir / file;
    write_text_atomic(page.string(), scan_page(s, n, scans.size(), scan_dir, options));
    written.push_back(page.string());

    rows += "<tr><td><a href=\"scans/" + html_escape(file) + "\">" + html_escape(s.subject) +
            "</a></td><td>" + html_escape(s.visit) + "</td><td><span class=\"status " +
            status_class(s.status) + "\">" + html_escape(s.status) + "</span></td>";
    for (const auto& name : metric_names) {
      const auto it = std::find_if(s.metrics.begin(), s.metrics.end(),
                                   [&](const HtmlMetric& m) { return m.name == name; });
      rows += "<td class=\"num\">" +
              (it == s.metrics.end() ? std::string("&mdash;") : format_value(it->value)) + "</td>";
    }
    rows += "</tr>\n";
  }

  std::string h = page_head(options.title);
  h += "<h1>" + html_escape(options.title) + "</h1>\n";
  h += fmt::format("<p>{} scans: {} ok, {} failed, {} other.</p>\n", scans.size(), by_status["ok"],
                   by_status["failed"], by_status["other"]);
  h += "<table>\n<tr><th>subject</th><th>visit</th><th>status</th>";
  for (const auto& name : metric_names) {
    std::string unit;
    for (const auto& s : scans) {
      for (const auto& m : s.metrics) {
        if (m.name == name && !m.unit.empty() && unit.empty()) unit = m.unit;
      }
    }
    h +=
        "<th>" + html_escape(name) + (unit.empty() ? "" : " (" + html_escape(unit) + ")") + "</th>";
  }
  h += "</tr>\n" + rows + "</table>\n</body>\n</html>\n";
  write_text_atomic(written.front(), h);
  return written;
}

}  // namespace lungvol::report
