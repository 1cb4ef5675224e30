#pragma once
// A minimal SVG line/point plot writer (no dependencies): axes, "nice" tick
// labels, a legend, one polyline (and optional markers) per series.
// Pure functions; thread-safe.

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace tidemark::bench {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
  bool markers = false;
  bool dashed = false;
};

struct PlotSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  // Custom x ticks (value, label); empty = automatic.
  std::vector<std::pair<double, std::string>> x_ticks;
  bool y_from_zero = true;
};

std::string RenderSvg(const PlotSpec& spec, const std::vector<PlotSeries>& series);

// Writes `contents` to `path` (replacing it). kIoError naming the path.
Status WriteTextFile(const std::string& path, const std::string& contents);

}  // namespace tidemark::bench
