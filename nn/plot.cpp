// Line plots, scatter plots and histograms as PNG through PLplot's C API and its "pngcairo"
// device. PLplot keeps global state, so every figure is drawn on a stream of its own (made with
// plmkstrm, ended with plend1) under one process-wide mutex. PLplot exits the process on its
// own errors, so everything it could reject (an unwritable file, non-finite or empty data, a
// log axis over values <= 0) is checked or filtered here before it is called.
#include "nn/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "tensor/error.h"

#ifdef ENCORE_HAVE_PLPLOT
#include <plplot/plplot.h>
#endif

namespace encore::plot {

namespace {

/// Prints "why" once per process (the first plot that cannot be drawn), naming the file.
void warn_once(const std::string& why, const std::string& png) {
  static bool warned = false;
  if (warned) return;
  warned = true;
  std::fprintf(stderr, "warning: %s; %s and every later plot are not written\n", why.c_str(),
               png.c_str());
}

/// Input checks shared by the builds with and without PLplot, so both reject the same calls.
void check_series(const char* op, const std::vector<Series>& series) {
  for (const Series& s : series)
    ENCORE_CHECK(s.x.size() == s.y.size(), op, "series '", s.label, "' has ", s.x.size(),
                 " x values and ", s.y.size(), " y values");
}

/// Returns the largest class (-1 for no points).
int64_t check_scatter(const std::vector<double>& x, const std::vector<double>& y,
                      const std::vector<int64_t>& classes) {
  ENCORE_CHECK(x.size() == y.size() && x.size() == classes.size(), "scatter_plot",
               "x, y and classes must have the same length, got ", x.size(), ", ", y.size(),
               " and ", classes.size());
  int64_t max_class = -1;
  for (int64_t c : classes) {
    ENCORE_CHECK(c >= 0, "scatter_plot", "classes must be >= 0, got ", c);
    max_class = std::max(max_class, c);
  }
  ENCORE_CHECK(max_class < 1000, "scatter_plot", "at most 1000 classes, got class ", max_class);
  return max_class;
}

void check_bins(int bins) {
  ENCORE_CHECK(bins >= 1 && bins <= 100000, "histogram", "bins must be in [1, 100000], got ", bins);
}

/// The first checks every plot makes: PLplot present, the file writable (PLplot would exit the
/// process if it could not open it).
bool can_draw(const char* op, const std::string& png) {
  if (!available()) {
#ifdef ENCORE_HAVE_PLPLOT
    warn_once("PLplot's pngcairo device is missing (install plplot-driver-cairo)", png);
#else
    warn_once("encore was built without PLplot (install libplplot-dev)", png);
#endif
    return false;
  }
  std::FILE* f = std::fopen(png.c_str(), "wb");
  ENCORE_CHECK(f != nullptr, op, "cannot write ", png);
  std::fclose(f);
  return true;
}

struct Range {
  double lo = INFINITY, hi = -INFINITY;
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  /// A range PLplot can draw: a little margin, never empty or a single value.
  Range padded(double fraction) const {
    if (!(lo <= hi)) return {0, 1};
    double span = hi - lo;
    if (span <= 0) {  // one value: centre it
      double w = lo != 0 ? 0.5 * std::abs(lo) : 1.0;
      return {lo - w, hi + w};
    }
    return {lo - fraction * span, hi + fraction * span};
  }
  /// On a log axis (values are log10): a range under one decade grows to whole decades, so
  /// the axis has labelled ticks (PLplot labels decades only).
  Range for_axis(bool log, double fraction) const {
    if (!log || !(lo <= hi) || hi - lo >= 1) return padded(fraction);
    return {std::floor(lo), std::max(std::ceil(hi), std::floor(lo) + 1)};
  }
};

/// A point usable on the axes: finite, and positive on a log axis (stored as log10 there).
bool map_point(double& x, double& y, const PlotOptions& o) {
  if (!std::isfinite(x) || !std::isfinite(y)) return false;
  if (o.log_x) {
    if (x <= 0) return false;
    x = std::log10(x);
  }
  if (o.log_y) {
    if (y <= 0) return false;
    y = std::log10(y);
  }
  return true;
}

/// Each series' drawable points (map_point), and the ranges they span.
struct Mapped {
  std::vector<std::vector<double>> xs, ys;
  Range x, y;
  /// The axes line_plot draws them on.
  Range x_axis(const PlotOptions& o) const { return x.for_axis(o.log_x, 0.02); }
  Range y_axis(const PlotOptions& o) const { return y.for_axis(o.log_y, 0.05); }
};

Mapped map_series(const std::vector<Series>& series, const PlotOptions& options) {
  Mapped m;
  m.xs.resize(series.size());
  m.ys.resize(series.size());
  for (size_t i = 0; i < series.size(); ++i)
    for (size_t k = 0; k < series[i].x.size(); ++k) {
      double x = series[i].x[k], y = series[i].y[k];
      if (!map_point(x, y, options)) continue;
      m.xs[i].push_back(x);
      m.ys[i].push_back(y);
      m.x.add(x);
      m.y.add(y);
    }
  return m;
}

/// The corner of the plot a legend of n_entries lines hides the least of the given polylines
/// (world coordinates inside the axes x, y): each segment is sampled finely and the samples
/// falling in each corner's legend-sized box are counted; ties keep the first in Corner's order.
Corner emptiest_corner(const std::vector<std::vector<double>>& xs,
                       const std::vector<std::vector<double>>& ys, Range x, Range y,
                       size_t n_entries) {
  // The legend's size as a fraction of the plot: about a third wide, a line of text per entry.
  const double box_w = 0.4, box_h = std::min(0.9, 0.06 + 0.075 * static_cast<double>(n_entries));
  size_t hits[4] = {0, 0, 0, 0};
  double sx = x.hi > x.lo ? x.hi - x.lo : 1, sy = y.hi > y.lo ? y.hi - y.lo : 1;
  auto count = [&](double px, double py) {
    double u = (px - x.lo) / sx, v = (py - y.lo) / sy;  // 0..1 inside the axes
    bool right = u >= 1 - box_w, left = u <= box_w, top = v >= 1 - box_h, bottom = v <= box_h;
    hits[0] += right && top;
    hits[1] += left && top;
    hits[2] += right && bottom;
    hits[3] += left && bottom;
  };
  constexpr int kSamples = 32;  // per segment: a steep segment crossing a box is still seen
  for (size_t i = 0; i < xs.size(); ++i)
    for (size_t k = 0; k < xs[i].size(); ++k) {
      if (k == 0) {
        count(xs[i][0], ys[i][0]);
        continue;
      }
      for (int t = 1; t <= kSamples; ++t) {
        double a = static_cast<double>(t) / kSamples;
        count(xs[i][k - 1] + a * (xs[i][k] - xs[i][k - 1]),
              ys[i][k - 1] + a * (ys[i][k] - ys[i][k - 1]));
      }
    }
  int best = 0;
  for (int c = 1; c < 4; ++c)
    if (hits[c] < hits[best]) best = c;
  return static_cast<Corner>(best);
}

}  // namespace

Corner legend_corner(const std::vector<Series>& series, const PlotOptions& options) {
  check_series("legend_corner", series);
  Mapped m = map_series(series, options);
  size_t labelled = 0;
  for (const Series& s : series) labelled += !s.label.empty();
  return emptiest_corner(m.xs, m.ys, m.x_axis(options), m.y_axis(options), labelled);
}

#ifdef ENCORE_HAVE_PLPLOT

namespace {

/// Serialises every PLplot call: its streams live in global state.
std::mutex& plot_mutex() {
  static std::mutex m;
  return m;
}

// Colour map 0: 0 background, 1 axes and text, 2 grid, 3.. the series (Tableau 10).
constexpr int kBackground = 0, kInk = 1, kGrid = 2, kFirstSeries = 3, kSeriesColours = 10;
constexpr PLINT kRed[] = {255, 0, 220, 31, 255, 44, 214, 148, 140, 227, 127, 188, 23};
constexpr PLINT kGreen[] = {255, 0, 220, 119, 127, 160, 39, 103, 86, 119, 127, 189, 190};
constexpr PLINT kBlue[] = {255, 0, 220, 180, 14, 44, 40, 189, 75, 194, 127, 34, 207};

PLINT series_colour(size_t i) { return kFirstSeries + static_cast<PLINT>(i % kSeriesColours); }

/// PLplot reads '#' as its escape character: "#" is written "##".
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '#') out += '#';
  }
  return out;
}

PLINT corner_position(Corner c) {
  switch (c) {
    case Corner::top_left:
      return PL_POSITION_LEFT | PL_POSITION_TOP;
    case Corner::bottom_right:
      return PL_POSITION_RIGHT | PL_POSITION_BOTTOM;
    case Corner::bottom_left:
      return PL_POSITION_LEFT | PL_POSITION_BOTTOM;
    case Corner::top_right:
      break;
  }
  return PL_POSITION_RIGHT | PL_POSITION_TOP;
}

/// One PLplot stream drawing one PNG: made current on construction, ended on destruction, the
/// previous stream made current again. Hold plot_mutex() for its lifetime.
class Figure {
 public:
  /// legend_outside: leave room at the right for a legend beside the plot.
  Figure(const std::string& png, const PlotOptions& o, bool legend_outside = false)
      : outside_(legend_outside) {
    plgstrm(&previous_);
    PLINT id = 0;
    plmkstrm(&id);
    plsdev("pngcairo");
    plsfnam(png.c_str());
    // PLplot cannot lay out a page that is tiny or far from square: 300..8000 pixels a side,
    // at most 3:1.
    int w = std::clamp(o.width, 300, 8000);
    int h = std::clamp(std::clamp(o.height, 300, 8000), w / 3, w * 3);
    w = std::clamp(w, h / 3, h * 3);
    plspage(0, 0, w, h, 0, 0);
    plscmap0n(sizeof(kRed) / sizeof(kRed[0]));
    plscmap0(kRed, kGreen, kBlue, sizeof(kRed) / sizeof(kRed[0]));
    plinit();
    pladv(0);
    plvsta();
    if (outside_) {
      PLFLT x0 = 0, x1 = 0, y0 = 0, y1 = 0;
      plgvpd(&x0, &x1, &y0, &y1);
      plvpor(x0, x1 - 0.1, y0, y1);
    }
  }
  ~Figure() {
    plend1();
    plsstrm(previous_);
  }
  Figure(const Figure&) = delete;
  Figure& operator=(const Figure&) = delete;

  /// World coordinates, grid, box with ticks and labels, axis labels and title.
  void axes(Range x, Range y, const PlotOptions& o) {
    plwind(x.lo, x.hi, y.lo, y.hi);
    std::string xopt = o.log_x ? "l" : "", yopt = o.log_y ? "l" : "";
    plcol0(kGrid);
    plwidth(0.5);
    // A requested x tick spacing, unless on a log axis or so fine that ticks would crowd.
    double xtick = o.x_tick;
    if (o.log_x || !(xtick > 0) || (x.hi - x.lo) / xtick > 50) xtick = 0;
    plbox(("g" + xopt).c_str(), xtick, 0, ("g" + yopt).c_str(), 0, 0);
    plcol0(kInk);
    plwidth(1.0);
    plbox(("bcnst" + xopt).c_str(), xtick, xtick > 0 ? 1 : 0, ("bcnstv" + yopt).c_str(), 0, 0);
    pllab(escape(o.xlabel).c_str(), escape(o.ylabel).c_str(), escape(o.title).c_str());
  }

  /// A legend in a corner inside the plot (or beside it: legend_outside): lines, or colour
  /// boxes when !lines.
  void legend(const std::vector<std::string>& labels, const std::vector<PLINT>& colours, bool lines,
              Corner corner = Corner::top_right) {
    if (labels.empty()) return;
    std::vector<std::string> text;
    for (const std::string& l : labels) text.push_back(escape(l));
    std::vector<const char*> text_ptrs;
    for (const std::string& t : text) text_ptrs.push_back(t.c_str());
    size_t n = labels.size();
    std::vector<PLINT> opts(n, lines ? PL_LEGEND_LINE : PL_LEGEND_COLOR_BOX);
    std::vector<PLINT> ink(n, kInk), patterns(n, 0), styles(n, 1), numbers(n, 1);
    std::vector<PLFLT> box_scales(n, 0.6), box_widths(n, 1.0), line_widths(n, 2.0),
        symbol_scales(n, 1.0);
    std::vector<const char*> symbols(n, "");
    PLFLT width = 0, height = 0;
    plcol0(kInk);
    PLINT where = outside_ ? PL_POSITION_RIGHT | PL_POSITION_OUTSIDE  // beside, centred
                           : corner_position(corner) | PL_POSITION_INSIDE;
    pllegend(&width, &height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, where,
             outside_ ? 0.01 : 0.02, outside_ ? 0.0 : 0.02, outside_ ? 0.02 : 0.08, kBackground,
             kInk, 1, 0, 0, static_cast<PLINT>(n), opts.data(), 1.0, 0.9, 2.0, 0.0, ink.data(),
             text_ptrs.data(), colours.data(), patterns.data(), box_scales.data(),
             box_widths.data(), colours.data(), styles.data(), line_widths.data(), colours.data(),
             symbol_scales.data(), numbers.data(), symbols.data());
  }

 private:
  bool outside_ = false;
  PLINT previous_ = 0;
};

}  // namespace

bool available() {
  static const bool found = [] {
    std::lock_guard<std::mutex> lock(plot_mutex());
    std::vector<const char*> menus(256), names(256);
    const char** m = menus.data();
    const char** d = names.data();
    int n = static_cast<int>(names.size());
    plgDevs(&m, &d, &n);
    for (int i = 0; i < n; ++i)
      if (d[i] && std::string(d[i]) == "pngcairo") return true;
    return false;
  }();
  return found;
}

bool line_plot(const std::string& png, const std::vector<Series>& series,
               const PlotOptions& options) {
  check_series("line_plot", series);
  if (!can_draw("line_plot", png)) return false;
  Mapped m = map_series(series, options);
  std::vector<std::vector<PLFLT>>& xs = m.xs;
  std::vector<std::vector<PLFLT>>& ys = m.ys;
  std::lock_guard<std::mutex> lock(plot_mutex());
  Figure fig(png, options);
  Range xa = m.x_axis(options), ya = m.y_axis(options);
  fig.axes(xa, ya, options);
  std::vector<std::string> labels;
  std::vector<PLINT> colours;
  for (size_t i = 0; i < series.size(); ++i) {
    plcol0(series_colour(i));
    plwidth(2.0);
    if (xs[i].size() == 1) {  // a single point draws no line: mark it
      plssym(0, 1.5);
      plpoin(1, xs[i].data(), ys[i].data(), 17);
    } else if (!xs[i].empty()) {
      plline(static_cast<PLINT>(xs[i].size()), xs[i].data(), ys[i].data());
    }
    if (!series[i].label.empty()) {
      labels.push_back(series[i].label);
      colours.push_back(series_colour(i));
    }
  }
  plwidth(1.0);
  fig.legend(labels, colours, /*lines=*/true, emptiest_corner(xs, ys, xa, ya, labels.size()));
  return true;
}

bool scatter_plot(const std::string& png, const std::vector<double>& x,
                  const std::vector<double>& y, const std::vector<int64_t>& classes,
                  const PlotOptions& options, const std::vector<std::string>& class_names) {
  int64_t max_class = check_scatter(x, y, classes);
  if (!can_draw("scatter_plot", png)) return false;
  size_t n_classes = static_cast<size_t>(max_class + 1);
  std::vector<std::vector<PLFLT>> xs(n_classes), ys(n_classes);
  Range xr, yr;
  for (size_t k = 0; k < x.size(); ++k) {
    double px = x[k], py = y[k];
    if (!map_point(px, py, options)) continue;
    size_t c = static_cast<size_t>(classes[k]);
    xs[c].push_back(px);
    ys[c].push_back(py);
    xr.add(px);
    yr.add(py);
  }
  std::lock_guard<std::mutex> lock(plot_mutex());
  Figure fig(png, options, /*legend_outside=*/true);
  fig.axes(xr.for_axis(options.log_x, 0.03), yr.for_axis(options.log_y, 0.03), options);
  plssym(0, x.size() > 5000 ? 0.7 : 1.0);
  std::vector<std::string> labels;
  std::vector<PLINT> colours;
  for (size_t c = 0; c < n_classes; ++c) {
    if (xs[c].empty()) continue;
    plcol0(series_colour(c));
    plpoin(static_cast<PLINT>(xs[c].size()), xs[c].data(), ys[c].data(), 17);
    labels.push_back(c < class_names.size() ? class_names[c] : std::to_string(c));
    colours.push_back(series_colour(c));
  }
  fig.legend(labels, colours, /*lines=*/false);
  return true;
}

bool histogram(const std::string& png, const std::vector<Series>& series, int bins,
               const PlotOptions& options) {
  check_bins(bins);
  if (!can_draw("histogram", png)) return false;
  PlotOptions value_axis = options;  // the values go along x; y is the count
  value_axis.log_y = false;
  Range vr;
  for (const Series& s : series)
    for (double v : s.y) {
      double x = v, y = 1;
      if (map_point(x, y, value_axis)) vr.add(x);
    }
  Range edges = vr.padded(0);
  double width = (edges.hi - edges.lo) / bins;
  std::vector<std::vector<double>> counts(series.size(), std::vector<double>(bins, 0.0));
  double max_count = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    for (double v : series[i].y) {
      double x = v, y = 1;
      if (!map_point(x, y, value_axis)) continue;
      int b = std::clamp(static_cast<int>((x - edges.lo) / width), 0, bins - 1);
      counts[i][b] += 1;
    }
    for (double c : counts[i]) max_count = std::max(max_count, c);
  }
  // Counts on a log axis start at 0.5, so an empty bin sits below every filled one.
  double floor = options.log_y ? std::log10(0.5) : 0.0;
  Range cr{floor, options.log_y ? std::log10(std::max(max_count, 1.0)) : std::max(max_count, 1.0)};
  std::lock_guard<std::mutex> lock(plot_mutex());
  Figure fig(png, options);
  Range xa{edges.lo, edges.hi}, ya{cr.lo, cr.hi + 0.08 * (cr.hi - cr.lo)};
  fig.axes(xa, ya, options);
  std::vector<std::string> labels;
  std::vector<PLINT> colours;
  std::vector<std::vector<PLFLT>> outlines_x(series.size()), outlines_y(series.size());
  for (size_t i = 0; i < series.size(); ++i) {
    // The outline as a step function.
    std::vector<PLFLT>& px = outlines_x[i];
    std::vector<PLFLT>& py = outlines_y[i];
    px.push_back(edges.lo);
    py.push_back(floor);
    for (int b = 0; b < bins; ++b) {
      double c = counts[i][b];
      double h = options.log_y ? (c > 0 ? std::log10(c) : floor) : c;
      px.push_back(edges.lo + b * width);
      py.push_back(h);
      px.push_back(edges.lo + (b + 1) * width);
      py.push_back(h);
    }
    px.push_back(edges.hi);
    py.push_back(floor);
    plcol0(series_colour(i));
    plwidth(2.0);
    plline(static_cast<PLINT>(px.size()), px.data(), py.data());
    if (!series[i].label.empty()) {
      labels.push_back(series[i].label);
      colours.push_back(series_colour(i));
    }
  }
  plwidth(1.0);
  fig.legend(labels, colours, /*lines=*/true,
             emptiest_corner(outlines_x, outlines_y, xa, ya, labels.size()));
  return true;
}

#else  // built without PLplot: every plot warns once and writes nothing

bool available() { return false; }

bool line_plot(const std::string& png, const std::vector<Series>& series, const PlotOptions&) {
  check_series("line_plot", series);
  return can_draw("line_plot", png);
}

bool scatter_plot(const std::string& png, const std::vector<double>& x,
                  const std::vector<double>& y, const std::vector<int64_t>& classes,
                  const PlotOptions&, const std::vector<std::string>&) {
  check_scatter(x, y, classes);
  return can_draw("scatter_plot", png);
}

bool histogram(const std::string& png, const std::vector<Series>&, int bins, const PlotOptions&) {
  check_bins(bins);
  return can_draw("histogram", png);
}

#endif

}  // namespace encore::plot
