// Pictures of numbers: line plots, scatter plots and histograms written as PNG through PLplot
// (Debian's libplplot-dev with its cairo driver), with labelled axes, a title and a legend.
// The training loop draws its loss curve with these; the example programs their own figures.
// Built without PLplot (meson option -Dplplot=disabled, or the library missing), every
// function writes nothing, prints one warning per process and returns false.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace encore::plot {

/// One line or point set of a plot.
struct Series {
  std::string label;  ///< legend text ("" for no legend entry)
  std::vector<double> x, y;
};

struct PlotOptions {
  std::string title;
  std::string xlabel;
  std::string ylabel;
  bool log_x = false;
  bool log_y = false;
  int width = 800;   ///< pixels (300 to 8000, at most 3:1 with height)
  int height = 600;  ///< pixels (300 to 8000)
  /// Spacing of the labelled x ticks (e.g. 1 for epochs); 0 chooses automatically.
  double x_tick = 0;
};

/// A corner of the plot area, where line_plot and histogram put the legend.
enum class Corner { top_right, top_left, bottom_right, bottom_left };

/// The corner whose legend-sized box the series' lines cross least (ties: the first in
/// Corner's order), on the axes line_plot would draw: where line_plot puts its legend.
/// Needs no PLplot.
Corner legend_corner(const std::vector<Series>& series, const PlotOptions& options);

/// True when encore was built with PLplot.
bool available();

/// Lines through each series' points (x ascending), each in its own colour, with a legend in
/// the corner the lines leave freest (legend_corner).
bool line_plot(const std::string& png, const std::vector<Series>& series,
               const PlotOptions& options);

/// Points, coloured by an integer class per point (e.g. the digit label 0..9), with a legend
/// entry per class ("0".."9", or class_names when given). x, y, classes of the same length.
bool scatter_plot(const std::string& png, const std::vector<double>& x,
                  const std::vector<double>& y, const std::vector<int64_t>& classes,
                  const PlotOptions& options, const std::vector<std::string>& class_names = {});

/// Histograms of each series' y values over common bins, overlaid as outlines (x unused).
bool histogram(const std::string& png, const std::vector<Series>& series, int bins,
               const PlotOptions& options);

}  // namespace encore::plot
