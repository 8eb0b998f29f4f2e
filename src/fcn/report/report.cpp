#include "fcn/report/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/data/dataset.h"
#include "fcn/eval/evaluate.h"
#include "fcn/formats/png.h"
#include "fcn/infer/picture.h"
#include "fcn/infer/predictor.h"
#include "fcn/models/registry.h"
#include "fcn/serialize/model_file.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;  // (epoch, value)
};

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64(const std::vector<char>& bytes) {
  static const char* kDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out += kDigits[(v >> 18) & 63];
    out += kDigits[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kDigits[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kDigits[v & 63] : '=';
  }
  return out;
}

std::string img(const torch::Tensor& picture, const std::string& alt) {
  return "<img alt=\"" + escape(alt) + "\" src=\"data:image/png;base64," + base64(encode_png(picture)) + "\">";
}

std::string hex(const std::array<uint8_t, 3>& c) {
  char text[8];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", c[0], c[1], c[2]);
  return text;
}

std::string fixed(double value, int digits) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << value;
  return out.str();
}

// A line chart with axes, ticks and a legend; x = epoch.
std::string line_chart(const std::string& title, const std::vector<Series>& series) {
  constexpr double kW = 460, kH = 260, kLeft = 52, kRight = 12, kTop = 28, kBottom = 36;
  double x_max = 1, y_min = 0, y_max = 0;
  for (const auto& s : series)
    for (const auto& [x, y] : s.points) x_max = std::max(x_max, x), y_max = std::max(y_max, y), y_min = std::min(y_min, y);
  if (y_max <= y_min) y_max = y_min + 1;
  const auto px = [&](double x) { return kLeft + (x - (x_max > 1 ? 1 : 0)) / std::max(1.0, x_max - 1) * (kW - kLeft - kRight); };
  const auto py = [&](double y) { return kTop + (y_max - y) / (y_max - y_min) * (kH - kTop - kBottom); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH << "\" class=\"chart\">"
      << "<text x=\"" << kW / 2 << "\" y=\"16\" text-anchor=\"middle\" class=\"title\">" << escape(title) << "</text>";
  for (int i = 0; i <= 4; ++i) {
    const double y = y_min + (y_max - y_min) * i / 4;
    svg << "<line x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\"" << py(y) << "\" y2=\"" << py(y)
        << "\" stroke=\"#ddd\"/><text x=\"" << kLeft - 4 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\">"
        << fixed(y, 3) << "</text>";
  }
  const int64_t epochs = static_cast<int64_t>(x_max);
  for (int64_t e = 1; e <= epochs; e += std::max<int64_t>(1, epochs / 10))
    svg << "<text x=\"" << px(static_cast<double>(e)) << "\" y=\"" << kH - kBottom + 16 << "\" text-anchor=\"middle\">" << e << "</text>";
  svg << "<text x=\"" << (kLeft + kW - kRight) / 2 << "\" y=\"" << kH - 4 << "\" text-anchor=\"middle\">epoch</text>";
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    svg << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\" points=\"";
    for (const auto& [x, y] : s.points) svg << px(x) << "," << py(y) << " ";
    svg << "\"/>";
    for (const auto& [x, y] : s.points) svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"3\" fill=\"" << s.color << "\"/>";
    svg << "<text x=\"" << kW - kRight - 4 << "\" y=\"" << kTop + 14 * (i + 1) << "\" text-anchor=\"end\" fill=\"" << s.color << "\">"
        << escape(s.name) << "</text>";
  }
  return svg.str() + "</svg>";
}

// Horizontal bars of per-class IoU in the class colours; n/a where the class never occurs.
std::string iou_bars(const std::vector<double>& iou, const std::vector<std::string>& names,
                     const std::vector<std::array<uint8_t, 3>>& palette) {
  constexpr double kRow = 20, kLabel = 130, kBar = 300;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kLabel + kBar + 60 << "\" height=\""
      << kRow * static_cast<double>(iou.size()) + 8 << "\" class=\"chart\">";
  for (size_t c = 0; c < iou.size(); ++c) {
    const double y = 4 + kRow * static_cast<double>(c);
    const std::string name = c < names.size() ? names[c] : std::to_string(c);
    svg << "<text x=\"" << kLabel - 6 << "\" y=\"" << y + 14 << "\" text-anchor=\"end\">" << escape(name) << "</text>";
    if (std::isnan(iou[c])) {
      svg << "<text x=\"" << kLabel + 4 << "\" y=\"" << y + 14 << "\" fill=\"#888\">n/a (absent)</text>";
      continue;
    }
    const auto color = c < palette.size() ? palette[c] : std::array<uint8_t, 3>{128, 128, 128};
    svg << "<rect x=\"" << kLabel << "\" y=\"" << y + 2 << "\" width=\"" << kBar * iou[c] << "\" height=\"" << kRow - 4
        << "\" fill=\"" << hex(color) << "\" stroke=\"#333\" stroke-width=\"0.5\"/><text x=\"" << kLabel + kBar * iou[c] + 4
        << "\" y=\"" << y + 14 << "\">" << fixed(100 * iou[c], 1) << "%</text>";
  }
  return svg.str() + "</svg>";
}

// Row-normalised confusion matrix (rows: ground truth), white -> dark blue, with class labels.
std::string confusion_svg(const torch::Tensor& matrix, const std::vector<std::string>& names) {
  const int64_t k = matrix.size(0);
  const double cell = std::max(8.0, std::min(28.0, 560.0 / static_cast<double>(k))), label = 120;
  const auto m = matrix.to(torch::kDouble);
  const auto rows = m.sum(1, true).clamp_min(1);
  const auto share = (m / rows).contiguous();
  const double* s = share.data_ptr<double>();
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << label + cell * static_cast<double>(k) + 10 << "\" height=\""
      << label + cell * static_cast<double>(k) + 10 << "\" class=\"chart\">";
  for (int64_t i = 0; i < k; ++i) {
    const std::string name = i < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(i)] : std::to_string(i);
    const double at = label + cell * (static_cast<double>(i) + 0.5);
    svg << "<text x=\"" << label - 4 << "\" y=\"" << at + 4 << "\" text-anchor=\"end\">" << escape(name) << "</text>"
        << "<text transform=\"translate(" << at + 4 << "," << label - 4 << ") rotate(-60)\">" << escape(name) << "</text>";
    for (int64_t j = 0; j < k; ++j) {
      const double v = s[i * k + j];
      const int r = static_cast<int>(std::lround(255 - v * (255 - 8))), g = static_cast<int>(std::lround(255 - v * (255 - 48))),
                b = static_cast<int>(std::lround(255 - v * (255 - 107)));
      svg << "<rect x=\"" << label + cell * static_cast<double>(j) << "\" y=\"" << label + cell * static_cast<double>(i)
          << "\" width=\"" << cell << "\" height=\"" << cell << "\" fill=\"rgb(" << r << "," << g << "," << b
          << ")\" stroke=\"#eee\"><title>" << escape(name) << " -> "
          << escape(j < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(j)] : std::to_string(j)) << ": "
          << fixed(100 * v, 1) << "%</title></rect>";
    }
  }
  return svg.str() + "</svg>";
}

// "12 epochs trained; best.fcn is epoch 9 (validation mean IU 41.3%)": the best as fcn train picks it
// (the first epoch of the highest validation mean IU), from metrics.jsonl.
std::string epochs_summary(const std::vector<nlohmann::json>& epochs) {
  int64_t best_epoch = 0;
  double best = -1;
  for (const auto& e : epochs) {
    const double mean_iu = e.contains("val") && e["val"].is_object() ? e["val"].value("mean_iu", -1.0) : -1.0;
    if (mean_iu > best) best = mean_iu, best_epoch = e.value("epoch", int64_t{0});
  }
  const std::string trained = std::to_string(epochs.back().value("epoch", int64_t{0})) + " epochs trained; ";
  if (best_epoch == 0) return trained + "no validation ran, so best.fcn is the last epoch";
  return trained + "best.fcn is epoch " + std::to_string(best_epoch) + " (validation mean IU " + fixed(100 * best, 2) + "%)";
}

// A path as the page shows it: relative to the working folder where it lies inside it (model files record
// their data as an absolute path), else as given.
std::string shown_path(const std::string& path) {
  std::error_code error;
  const auto relative = std::filesystem::proximate(path, error);
  if (error || relative.empty() || *relative.begin() == "..") return path;
  return relative.string();
}

// The example grid: the images the model gets most wrong (lowest mean IU, each scored on its own),
// each as image | ground truth | prediction, the colours' legend above.
std::string examples_html(const Model& model, const SegmentationDataset& dataset, const ReportOptions& options,
                          std::vector<ImageScore> per_image) {
  per_image = lowest_mean_iu(std::move(per_image), options.examples);
  std::ostringstream html;
  html << "<h2>Examples: the " << per_image.size() << " with the lowest mean IU</h2>"
       << "<p>image | ground truth | prediction (overlay), each image scored on its own</p><p>";
  for (size_t c = 0; c < model.meta.class_names.size() && c < model.meta.palette.size(); ++c)
    html << "<span class=\"swatch\" style=\"background:" << hex(model.meta.palette[c]) << "\"></span>" << escape(model.meta.class_names[c]);
  html << "</p><div class=\"grid\">";
  const Predictor predictor(model, options.device, options.predict);
  for (const auto& score : per_image) {
    const auto sample = dataset.get(score.index);
    const auto prediction = predictor(sample.image, score.image);
    const auto image = to_rgb8(sample.image);
    const auto truth = blend(image, colorize(sample.mask, model.meta.palette), 0.6);
    const auto row = hconcat({enlarge(image, 128), enlarge(truth, 128), enlarge(prediction.overlay(sample.image, 0.6), 128)});
    html << "<div>" << img(row, shown_path(score.image)) << "<br><code>" << escape(std::filesystem::path(score.image).filename().string())
         << "</code> mean IU " << fixed(100 * score.metrics.mean_iu, 2) << "%, pixel acc. " << fixed(100 * score.metrics.pixel_acc, 2)
         << "%</div>";
  }
  return html.str();
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot open (is this a run directory written by fcn train?)");
  std::vector<nlohmann::json> epochs;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    try {
      epochs.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception&) {
      fail(path, "line " + std::to_string(number) + " is not JSON");
    }
  }
  if (epochs.empty()) fail(path, "holds no epochs yet");
  return epochs;
}

}  // namespace

void write_report(const std::string& run_dir, const std::string& out, const ReportOptions& options) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(run_dir)) {  // `fcn report model.fcn`: name the folder fcn train wrote beside it
    const auto beside = fs::path(run_dir).replace_extension(".run");
    fail(run_dir, "is a file, not the run directory fcn train writes" +
                      (fs::is_directory(beside) ? "; try " + beside.string() : std::string(" (MODEL.run/ by default)")));
  }
  const auto epochs = read_metrics((fs::path(run_dir) / "metrics.jsonl").string());
  const std::string model_path = (fs::path(run_dir) / "best.fcn").string();
  const auto model = load_model(model_path);
  const auto training = nlohmann::json::parse(model.meta.training, nullptr, false);
  std::string data = options.data;
  if (data.empty() && training.is_object() && training.contains("data")) data = training["data"].get<std::string>();
  if (data.empty()) fail(model_path, "records no dataset; give --data");
  const SegmentationDataset dataset(data, options.split);
  std::vector<ImageScore> per_image;
  const auto metrics = evaluate(model, dataset, options.predict, options.device, options.quiet, {nullptr, nullptr, &per_image});
  const auto result = metrics.metrics();

  Series loss{"train loss", "#c0392b", {}}, mean_iu{"val mean IU", "#2471a3", {}}, pixel_acc{"val pixel acc", "#7d8c2e", {}};
  for (const auto& e : epochs) {
    const double epoch = e.value("epoch", 0.0);
    if (e.contains("train_loss")) loss.points.emplace_back(epoch, e["train_loss"].get<double>());
    if (e.contains("val") && e["val"].is_object()) {
      mean_iu.points.emplace_back(epoch, e["val"].value("mean_iu", 0.0));
      pixel_acc.points.emplace_back(epoch, e["val"].value("pixel_acc", 0.0));
    }
  }

  std::ostringstream html;
  html << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>fcn report: " << escape(run_dir) << "</title><style>"
       << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}h1{font-size:22px}h2{font-size:17px;margin-top:28px}"
       << ".chart text{font-size:11px;font-family:sans-serif}.chart .title{font-size:13px;font-weight:bold}"
       << "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
       << ".grid img{image-rendering:pixelated;margin:2px;border:1px solid #ccc}.swatch{display:inline-block;width:12px;"
       << "height:12px;border:1px solid #333;margin:0 4px 0 12px}code{background:#f4f4f4;padding:1px 4px}</style></head><body>";
  html << "<h1>fcn training report</h1><p>Run <code>" << escape(run_dir) << "</code>, model <code>" << escape(model_path)
       << "</code>: <code>" << escape(net_config(*model.net).dump()) << "</code></p>";
  if (training.is_object() && training.contains("command") && training["command"].is_string())
    html << "<p>Command: <code>" << escape(training["command"].get<std::string>()) << "</code></p>";
  if (training.is_object()) {
    auto shown = training;
    if (shown.contains("data") && shown["data"].is_string()) shown["data"] = shown_path(shown["data"].get<std::string>());
    html << "<p>Training: <code>" << escape(shown.dump()) << "</code></p>";
  }
  html << "<h2>Curves</h2><p>" << escape(epochs_summary(epochs)) << ".</p>" << line_chart("training loss", {loss}) << line_chart("validation", {mean_iu, pixel_acc});
  html << "<h2>Best model on " << escape(shown_path(data)) << " (" << escape(dataset.split()) << ", " << dataset.size() << " images)</h2>"
       << "<p>Inference: " << escape(describe_inference(options.predict)) << "</p>"
       << "<table><tr><th>pixel acc.</th><th>mean acc.</th><th>mean IU</th><th>f.w. IU</th></tr><tr>";
  for (const double v : {result.pixel_acc, result.mean_acc, result.mean_iu, result.fw_iu}) html << "<td>" << fixed(100 * v, 2) << "%</td>";
  html << "</tr></table><h2>IoU per class</h2>" << iou_bars(result.iou, model.meta.class_names, model.meta.palette);
  html << "<h2>Confusion matrix</h2><p>Rows: ground truth, columns: prediction, each row normalised.</p>"
       << confusion_svg(metrics.matrix(), model.meta.class_names);

  html << examples_html(model, dataset, options, std::move(per_image));
  html << "</div><p>Written by <code>fcn report</code>.</p></body></html>\n";
  const std::string text = html.str();
  write_file_atomic(out, text.data(), text.size());
}

}  // namespace fcn
