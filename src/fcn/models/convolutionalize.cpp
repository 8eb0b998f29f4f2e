#include "fcn/models/convolutionalize.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {

nlohmann::json ConvClassifierImpl::config() const { return classifier_config(options); }

std::shared_ptr<NetImpl> ConvClassifierImpl::from_config(const nlohmann::json& config) {
  return std::make_shared<ConvClassifierImpl>(classifier_options_from(config));
}

void ConvClassifierImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::ConvClassifier(classes=" << options.num_classes() << ", backbone=" << backbone_name(options.backbone())
         << ", fc6_kernel=" << options.kernel() << ", fc_channels=" << options.fc_channels() << ")";
}

ConvClassifierImpl::ConvClassifierImpl(const ClassifierOptions& options_) : options(options_) {
  options.backbone().layout(BackboneLayout::kClassifier);
  backbone = register_module("backbone", make_backbone(options.backbone()));
  const int64_t k = options.kernel();
  const int64_t fc = options.fc_channels();
  const int64_t c5 = backbone->channels(32);
  if (fc > 0) {
    fc6 = register_module("fc6", torch::nn::Conv2d(torch::nn::Conv2dOptions(c5, fc, k)));
    fc7 = register_module("fc7", torch::nn::Conv2d(torch::nn::Conv2dOptions(fc, fc, 1)));
  }
  fc8 = register_module("fc8", torch::nn::Conv2d(torch::nn::Conv2dOptions(fc > 0 ? fc : c5, options.num_classes(), 1)));
  dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
}

int64_t ConvClassifierImpl::min_input_size() const {
  int64_t side = 1;
  while (backbone->output_side(side) < options.kernel()) ++side;
  return side;
}

torch::Tensor ConvClassifierImpl::forward(const torch::Tensor& x) {
  check_input(x, in_channels(), "conv-classifier");
  if (x.size(2) < min_input_size() || x.size(3) < min_input_size())
    fail("conv-classifier", "input " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                                " is smaller than " + std::to_string(min_input_size()) + "x" +
                                std::to_string(min_input_size()) + ", the classifier's training size");
  auto h = backbone->forward(x).stride32;
  if (fc6.is_empty()) return conv(fc8, h);
  h = dropout(conv_relu(fc6, h));
  h = dropout(conv_relu(fc7, h));
  return conv(fc8, h);
}

ConvClassifier convolutionalize(ClassifierImpl& classifier) {
  ConvClassifier net(classifier.options);
  copy_state(*net->backbone, *classifier.backbone);
  torch::NoGradGuard no_grad;
  // A dense layer over a flattened C x k x k map is a k x k conv: same numbers, new view.
  auto reshape_into = [](torch::nn::Conv2d& conv, const torch::nn::Linear& dense) {
    conv->weight.copy_(dense->weight.view(conv->weight.sizes()));
    conv->bias.copy_(dense->bias);
  };
  if (!classifier.fc6.is_empty()) {
    reshape_into(net->fc6, classifier.fc6);
    reshape_into(net->fc7, classifier.fc7);
  }
  reshape_into(net->fc8, classifier.fc8);
  net->train(classifier.is_training());
  return net;
}

}  // namespace fcn
