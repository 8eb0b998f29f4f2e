#include "fcn/models/classifier.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/init.h"
#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {

nlohmann::json classifier_config(const ClassifierOptions& o) {
  return {{"backbone", backbone_config(o.backbone())}, {"input_size", o.input_size()}, {"fc_channels", o.fc_channels()},
          {"num_classes", o.num_classes()}, {"dropout", o.dropout()}};
}

ClassifierOptions classifier_options_from(const nlohmann::json& j) {
  return ClassifierOptions()
      .backbone(backbone_from_config(j.at("backbone")))
      .input_size(j.at("input_size").get<int64_t>())
      .fc_channels(j.at("fc_channels").get<int64_t>())
      .num_classes(j.at("num_classes").get<int64_t>())
      .dropout(j.at("dropout").get<double>());
}

nlohmann::json ClassifierImpl::config() const { return classifier_config(options); }

std::shared_ptr<NetImpl> ClassifierImpl::from_config(const nlohmann::json& config) {
  return std::make_shared<ClassifierImpl>(classifier_options_from(config));
}

void ClassifierImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::Classifier(classes=" << options.num_classes() << ", backbone=" << backbone_name(options.backbone())
         << ", input_size=" << options.input_size() << ", fc_channels=" << options.fc_channels() << ")";
}

ClassifierImpl::ClassifierImpl(const ClassifierOptions& options_) : options(options_) {
  options.backbone().layout(BackboneLayout::kClassifier);
  if (options.kernel() < 1)
    fail("classifier", "input size " + std::to_string(options.input_size()) + " is too small for " + backbone_name(options.backbone()));
  backbone = register_module("backbone", make_backbone(options.backbone()));
  const int64_t k = options.kernel();
  const int64_t c5 = backbone->channels(32);
  const int64_t fc = options.fc_channels();
  if (fc > 0) {
    fc6 = register_module("fc6", torch::nn::Linear(c5 * k * k, fc));
    fc7 = register_module("fc7", torch::nn::Linear(fc, fc));
    init_normal(fc6);
    init_normal(fc7);
  }
  fc8 = register_module("fc8", torch::nn::Linear(fc > 0 ? fc : c5, options.num_classes()));
  dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
  init_normal(fc8);
}

torch::Tensor ClassifierImpl::dense_head(const torch::Tensor& flat_pool5) {
  if (fc6.is_empty()) return linear(fc8, flat_pool5);
  auto x = dropout(torch::relu(linear(fc6, flat_pool5)));
  x = dropout(torch::relu(linear(fc7, x)));
  return linear(fc8, x);
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) {
  check_input(x, in_channels(), "classifier");
  if (backbone->output_side(x.size(2)) < 1 || backbone->output_side(x.size(3)) < 1)
    fail("classifier", "input " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) + " is too small for " +
                           backbone_name(options.backbone()) + " (its stride-32 map would be empty)");
  auto pool5 = backbone->forward(x).stride32;
  const int64_t k = options.kernel();
  pool5 = torch::adaptive_avg_pool2d(pool5, {k, k});
  return dense_head(pool5.flatten(1));
}

}  // namespace fcn
