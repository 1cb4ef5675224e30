#include "bench/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

namespace tidemark::bench {
namespace {

constexpr double kWidth = 720, kHeight = 440;
constexpr double kLeft = 80, kRight = 160, kTop = 40, kBottom = 60;
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string Label(double v) {
  char buf[32];
  double a = std::fabs(v);
  if (a >= 1e6)
    std::snprintf(buf, sizeof buf, "%gM", v / 1e6);
  else if (a >= 1e4)
    std::snprintf(buf, sizeof buf, "%gk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Ticks at 1, 2 or 5 times a power of ten covering [lo, hi].
std::vector<double> NiceTicks(double lo, double hi, int target = 6) {
  std::vector<double> ticks;
  if (!(hi > lo))
    hi = lo + 1;
  double raw = (hi - lo) / target;
  double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw)
      break;
  }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(t);
  return ticks;
}

}  // namespace

std::string RenderSvg(const PlotSpec& spec, const std::vector<PlotSeries>& series) {
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin;
  double ymin = spec.y_from_zero ? 0 : std::numeric_limits<double>::infinity(), ymax = -xmin;
  for (const auto& s : series) {
    for (auto [x, y] : s.points) {
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymin = std::min(ymin, y);
      ymax = std::max(ymax, y);
    }
  }
  for (const auto& [x, label] : spec.x_ticks) {
    xmin = std::min(xmin, x);
    xmax = std::max(xmax, x);
  }
  if (!std::isfinite(xmin))
    xmin = 0, xmax = 1;
  if (!std::isfinite(ymin) || !std::isfinite(ymax))
    ymin = 0, ymax = 1;
  if (xmax <= xmin)
    xmax = xmin + 1;
  std::vector<double> yticks = NiceTicks(ymin, ymax * 1.05);
  ymax = std::max(ymax, yticks.back());
  if (ymax <= ymin)
    ymax = ymin + 1;
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto X = [&](double x) {
    return kLeft + (x - xmin) / (xmax - xmin) * pw;
  };
  auto Y = [&](double y) {
    return kTop + ph - (y - ymin) / (ymax - ymin) * ph;
  };

  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(kWidth) + "\" height=\"" +
       Num(kHeight) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + Num(kWidth / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
       Escape(spec.title) + "</text>\n";
  // Grid and ticks.
  for (double t : yticks) {
    o += "<line x1=\"" + Num(kLeft) + "\" x2=\"" + Num(kLeft + pw) + "\" y1=\"" + Num(Y(t)) +
         "\" y2=\"" + Num(Y(t)) + "\" stroke=\"#ddd\"/>\n";
    o += "<text x=\"" + Num(kLeft - 6) + "\" y=\"" + Num(Y(t) + 4) + "\" text-anchor=\"end\">" +
         Label(t) + "</text>\n";
  }
  std::vector<std::pair<double, std::string>> xticks = spec.x_ticks;
  if (xticks.empty()) {
    for (double t : NiceTicks(xmin, xmax))
      xticks.emplace_back(t, Label(t));
  }
  for (const auto& [t, label] : xticks) {
    if (t < xmin || t > xmax)
      continue;
    o += "<line x1=\"" + Num(X(t)) + "\" x2=\"" + Num(X(t)) + "\" y1=\"" + Num(kTop) + "\" y2=\"" +
         Num(kTop + ph) + "\" stroke=\"#eee\"/>\n";
    o += "<text x=\"" + Num(X(t)) + "\" y=\"" + Num(kTop + ph + 18) + "\" text-anchor=\"middle\">" +
         Escape(label) + "</text>\n";
  }
  o += "<rect x=\"" + Num(kLeft) + "\" y=\"" + Num(kTop) + "\" width=\"" + Num(pw) +
       "\" height=\"" + Num(ph) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  o += "<text x=\"" + Num(kLeft + pw / 2) + "\" y=\"" + Num(kHeight - 14) +
       "\" text-anchor=\"middle\">" + Escape(spec.x_label) + "</text>\n";
  o += "<text transform=\"translate(18," + Num(kTop + ph / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + Escape(spec.y_label) + "</text>\n";
  // Series.
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const char* color = kColors[i % (sizeof kColors / sizeof kColors[0])];
    std::string pts;
    for (auto [x, y] : s.points)
      pts += Num(X(x)) + "," + Num(Y(y)) + " ";
    o += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"2\"" +
         (s.dashed ? " stroke-dasharray=\"6,4\"" : "") + " points=\"" + pts + "\"/>\n";
    if (s.markers) {
      for (auto [x, y] : s.points) {
        o += "<circle cx=\"" + Num(X(x)) + "\" cy=\"" + Num(Y(y)) + "\" r=\"4\" fill=\"" + color +
             "\"/>\n";
      }
    }
    double ly = kTop + 10 + 20 * static_cast<double>(i);
    o += "<line x1=\"" + Num(kLeft + pw + 12) + "\" x2=\"" + Num(kLeft + pw + 36) + "\" y1=\"" +
         Num(ly) + "\" y2=\"" + Num(ly) + "\" stroke=\"" + color + "\" stroke-width=\"2\"" +
         (s.dashed ? " stroke-dasharray=\"6,4\"" : "") + "/>\n";
    o += "<text x=\"" + Num(kLeft + pw + 42) + "\" y=\"" + Num(ly + 4) + "\">" + Escape(s.name) +
         "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

Status WriteTextFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    return IoError("cannot write " + path);
  out << contents;
  out.close();
  if (!out)
    return IoError("error writing " + path);
  return Status::Ok();
}

}  // namespace tidemark::bench
