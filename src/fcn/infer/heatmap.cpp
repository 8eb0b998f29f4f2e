#include "fcn/infer/heatmap.h"

#include <torch/torch.h>

#include "fcn/infer/picture.h"
#include "fcn/infer/predictor.h"
#include "fcn/models/convolutionalize.h"
#include "fcn/util/error.h"

namespace fcn {

Heatmap class_heatmap(const Model& model, const torch::Tensor& image, int64_t class_index, const std::string& source) {
  if (!image.defined() || image.dim() != 3 || image.size(1) == 0 || image.size(2) == 0)
    fail(source, "image is empty or not C x H x W");
  std::shared_ptr<NetImpl> net = model.net;
  if (auto classifier = std::dynamic_pointer_cast<ClassifierImpl>(net)) net = convolutionalize(*classifier).ptr();
  if (class_index < 0 || class_index >= net->label_classes())
    fail(source, "class " + std::to_string(class_index) + " is not in 0.." + std::to_string(net->label_classes() - 1));
  if (auto conv = std::dynamic_pointer_cast<ConvClassifierImpl>(net)) {
    const int64_t side = conv->min_input_size();
    if (image.size(1) < side || image.size(2) < side)
      fail(source, "is " + std::to_string(image.size(2)) + "x" + std::to_string(image.size(1)) +
                       ", smaller than the classifier's window of " + std::to_string(side) + "x" + std::to_string(side));
  }
  c10::InferenceMode guard;
  const bool was_training = net->is_training();
  net->eval();
  const auto logits = net->forward(model_input(model, image, source)).to(torch::kFloat);
  net->train(was_training);
  Heatmap heatmap;
  heatmap.coarse = class_probabilities(logits, 1)[0][class_index].contiguous();
  heatmap.full = torch::upsample_bilinear2d(heatmap.coarse.unsqueeze(0).unsqueeze(0), {image.size(1), image.size(2)}, false)[0][0];
  return heatmap;
}

torch::Tensor heatmap_picture(const torch::Tensor& image, const torch::Tensor& full, double alpha) {
  return blend(to_rgb8(image), colormap(full), alpha);
}

int64_t class_index(const ModelMeta& meta, const std::string& name) {
  for (size_t i = 0; i < meta.class_names.size(); ++i)
    if (meta.class_names[i] == name) return static_cast<int64_t>(i);
  try {
    size_t used = 0;
    const int64_t index = std::stoll(name, &used);
    if (used == name.size() && index >= 0 && index < static_cast<int64_t>(meta.class_names.size())) return index;
  } catch (const std::logic_error&) {
  }
  std::string known;
  for (const auto& n : meta.class_names) known += (known.empty() ? "" : ", ") + n;
  fail("class", "'" + name + "' is not a class of the model (" + known + ")");
}

}  // namespace fcn
