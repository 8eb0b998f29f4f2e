#include "fcn/serialize/onnx_export.h"

#include <limits>

#include <nlohmann/json.hpp>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include "fcn/models/alexnet.h"
#include "fcn/models/fcn.h"
#include "fcn/models/googlenet.h"
#include "fcn/models/layers.h"
#include "fcn/models/registry.h"
#include "fcn/models/resnet.h"
#include "fcn/models/torchvision_fcn.h"
#include "fcn/models/unet.h"
#include "fcn/models/vgg.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

// A graph value: its ONNX name and the tensor the same op gives in LibTorch on the probe input.
struct Value {
  std::string name;
  torch::Tensor t;
};

// Appends ONNX nodes while running the same ops in LibTorch (so shapes are known and the graph
// can be checked against the model). Crops are written as trims from each side, which stay
// correct for any input size where the trims do not depend on it (dynamic export).
class Tracer {
 public:
  Tracer(onnx::GraphProto& graph, bool dynamic) : graph_(graph), dynamic_(dynamic) {}

  Value conv(const std::string& name, torch::nn::Conv2d layer, const Value& x) {
    const auto& o = layer->options;
    const auto padding = explicit_padding(o);
    std::vector<std::string> inputs{x.name, weight(name + ".weight", layer->weight)};
    if (layer->bias.defined()) inputs.push_back(weight(name + ".bias", layer->bias));
    auto* n = node("Conv", inputs, name);
    ints(n, "kernel_shape", {o.kernel_size()->at(0), o.kernel_size()->at(1)});
    ints(n, "strides", {o.stride()->at(0), o.stride()->at(1)});
    ints(n, "pads", {padding->at(0), padding->at(1), padding->at(0), padding->at(1)});
    ints(n, "dilations", {o.dilation()->at(0), o.dilation()->at(1)});
    if (o.groups() != 1) {  // ResNeXt's 3x3 convs
      auto* group = n->add_attribute();
      group->set_name("group");
      group->set_type(onnx::AttributeProto::INT);
      group->set_i(o.groups());
    }
    return {n->output(0), layer->forward(x.t)};
  }

  Value conv_transpose(const std::string& name, torch::nn::ConvTranspose2d layer, const Value& x) {
    const auto& o = layer->options;
    std::vector<std::string> inputs{x.name, weight(name + ".weight", layer->weight)};
    if (layer->bias.defined()) inputs.push_back(weight(name + ".bias", layer->bias));
    auto* n = node("ConvTranspose", inputs, name);
    ints(n, "kernel_shape", {o.kernel_size()->at(0), o.kernel_size()->at(1)});
    ints(n, "strides", {o.stride()->at(0), o.stride()->at(1)});
    const auto padding = explicit_padding(o);
    ints(n, "pads", {padding->at(0), padding->at(1), padding->at(0), padding->at(1)});
    return {n->output(0), layer->forward(x.t)};
  }

  Value batch_norm(const std::string& name, torch::nn::BatchNorm2d layer, const Value& x) {
    auto* n = node("BatchNormalization",
                   {x.name, weight(name + ".weight", layer->weight), weight(name + ".bias", layer->bias),
                    weight(name + ".running_mean", layer->running_mean), weight(name + ".running_var", layer->running_var)},
                   name);
    auto* epsilon = n->add_attribute();
    epsilon->set_name("epsilon");
    epsilon->set_type(onnx::AttributeProto::FLOAT);
    epsilon->set_f(static_cast<float>(layer->options.eps()));
    return {n->output(0), layer->forward(x.t)};
  }

  Value relu(const Value& x) { return {node("Relu", {x.name}, "relu")->output(0), torch::relu(x.t)}; }

  Value max_pool(const Value& x, bool ceil_mode, int64_t kernel = 2, int64_t stride = 2, int64_t padding = 0) {
    auto* n = node("MaxPool", {x.name}, "pool");
    ints(n, "kernel_shape", {kernel, kernel});
    ints(n, "strides", {stride, stride});
    ints(n, "pads", {padding, padding, padding, padding});
    int_attribute(n, "ceil_mode", ceil_mode ? 1 : 0);
    return {n->output(0), torch::max_pool2d(x.t, kernel, stride, padding, 1, ceil_mode)};
  }

  // x * scale + shift with per-channel constants (1 x C x 1 x 1): GoogLeNet's transform_input.
  Value affine(const Value& x, const torch::Tensor& scale, const torch::Tensor& shift) {
    const auto times = node("Mul", {x.name, weight(fresh("scale"), scale)}, "scale");
    const auto plus = node("Add", {times->output(0), weight(fresh("shift"), shift)}, "shift");
    return {plus->output(0), x.t * scale + shift};
  }

  // x * factor (a constant): the at-once FCN's fixed skip scaling.
  Value scale(const Value& x, double factor) {
    const auto name = weight(fresh("scale"), torch::full({1}, factor));
    return {node("Mul", {x.name, name}, "scale")->output(0), x.t * factor};
  }

  Value add(const Value& a, const Value& b) { return {node("Add", {a.name, b.name}, "add")->output(0), a.t + b.t}; }

  Value concat(const Value& a, const Value& b) {
    auto* n = node("Concat", {a.name, b.name}, "concat");
    int_attribute(n, "axis", 1);
    return {n->output(0), torch::cat({a.t, b.t}, 1)};
  }

  // Zero padding of H (top, bottom) and W (left, right).
  Value pad(const Value& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
    if (top == 0 && bottom == 0 && left == 0 && right == 0) return x;
    const auto pads = constant({0, 0, top, left, 0, 0, bottom, right}, "pads");
    return {node("Pad", {x.name, pads}, "pad")->output(0), torch::constant_pad_nd(x.t, {left, right, top, bottom}, 0.0)};
  }

  // x[:, :, top:top+height, left:left+width] (fcn::crop).
  Value crop(const Value& x, int64_t top, int64_t left, int64_t height, int64_t width) {
    const auto result = fcn::crop(x.t, top, left, height, width);
    const int64_t trim_bottom = x.t.size(2) - top - height, trim_right = x.t.size(3) - left - width;
    if (top == 0 && left == 0 && trim_bottom == 0 && trim_right == 0) return x;
    const auto end = [&](int64_t start, int64_t length, int64_t trim) {
      if (!dynamic_) return start + length;
      return trim == 0 ? std::numeric_limits<int64_t>::max() : -trim;
    };
    const auto starts = constant({top, left}, "starts");
    const auto ends = constant({end(top, height, trim_bottom), end(left, width, trim_right)}, "ends");
    const auto axes = constant({2, 3}, "axes");
    return {node("Slice", {x.name, starts, ends, axes}, "crop")->output(0), result};
  }

  // Bilinear x2 as torch's upsample_bilinear2d(align_corners=false): ONNX Resize, half_pixel.
  Value upsample2x(const Value& x) {
    onnx::TensorProto scales;
    scales.set_name(fresh("scales"));
    scales.set_data_type(onnx::TensorProto::FLOAT);
    scales.add_dims(4);
    for (float s : {1.0f, 1.0f, 2.0f, 2.0f}) scales.add_float_data(s);
    *graph_.add_initializer() = scales;
    auto* n = node("Resize", {x.name, "", scales.name()}, "upsample");
    string_attribute(n, "mode", "linear");
    string_attribute(n, "coordinate_transformation_mode", "half_pixel");
    return {n->output(0), torch::upsample_bilinear2d(x.t, {2 * x.t.size(2), 2 * x.t.size(3)}, false)};
  }

  // Bilinear resize (half-pixel centres, as align_corners=False) to a fixed height x width.
  Value resize_to(const Value& x, int64_t height, int64_t width) {
    const auto sizes = constant({x.t.size(0), x.t.size(1), height, width}, "sizes");
    auto* n = node("Resize", {x.name, "", "", sizes}, "resize");
    string_attribute(n, "mode", "linear");
    string_attribute(n, "coordinate_transformation_mode", "half_pixel");
    return {n->output(0), torch::upsample_bilinear2d(x.t, {height, width}, false)};
  }

  int64_t nodes() const { return graph_.node_size(); }

 private:
  std::string fresh(const std::string& hint) { return hint + "_" + std::to_string(count_++); }

  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs, const std::string& hint) {
    auto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(fresh(hint));
    for (const auto& input : inputs) n->add_input(input);
    n->add_output(n->name() + "_out");
    return n;
  }

  std::string weight(const std::string& name, const torch::Tensor& tensor) {
    const auto t = tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
    auto* init = graph_.add_initializer();
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::FLOAT);
    for (const auto d : t.sizes()) init->add_dims(d);
    init->set_raw_data(std::string(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.nbytes())));
    return name;
  }

  std::string constant(const std::vector<int64_t>& values, const std::string& hint) {
    auto* init = graph_.add_initializer();
    init->set_name(fresh(hint));
    init->set_data_type(onnx::TensorProto::INT64);
    init->add_dims(static_cast<int64_t>(values.size()));
    for (const auto v : values) init->add_int64_data(v);
    return init->name();
  }

  static void ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& values) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (const auto v : values) a->add_ints(v);
  }
  static void int_attribute(onnx::NodeProto* n, const std::string& name, int64_t value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }
  static void string_attribute(onnx::NodeProto* n, const std::string& name, const std::string& value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(value);
  }

  onnx::GraphProto& graph_;
  bool dynamic_;
  int64_t count_ = 0;
};

struct TracedFeatures {
  Value stride8, stride16, stride32;
};

TracedFeatures trace_vgg(Tracer& g, const VGGImpl& vgg, Value x) {
  TracedFeatures f;
  const auto& convs = vgg.convs();
  for (size_t i = 0; i < convs.size(); ++i) {
    x = g.conv("backbone." + convs[i].name, convs[i].conv, x);
    if (convs[i].bn) x = g.batch_norm("backbone.bn" + convs[i].name.substr(4), convs[i].bn, x);
    x = g.relu(x);
    const bool block_end = i + 1 == convs.size() || convs[i + 1].name.substr(0, 5) != convs[i].name.substr(0, 5);
    if (!block_end) continue;
    x = g.max_pool(x, vgg.ceil_mode());
    if (convs[i].name.rfind("conv3", 0) == 0) f.stride8 = x;
    if (convs[i].name.rfind("conv4", 0) == 0) f.stride16 = x;
  }
  f.stride32 = x;
  return f;
}

TracedFeatures trace_alexnet(Tracer& g, const AlexNetImpl& net, const Value& input) {
  const int64_t pad = net.options.layout() == BackboneLayout::kSame ? 1 : 0;  // AlexNetImpl's pools
  TracedFeatures f;
  f.stride8 = g.max_pool(g.relu(g.conv("backbone.features.0", net.conv1, input)), false, 3, 2, pad);
  f.stride16 = g.max_pool(g.relu(g.conv("backbone.features.3", net.conv2, f.stride8)), false, 3, 2, pad);
  Value x = g.relu(g.conv("backbone.features.6", net.conv3, f.stride16));
  x = g.relu(g.conv("backbone.features.8", net.conv4, x));
  f.stride32 = g.max_pool(g.relu(g.conv("backbone.features.10", net.conv5, x)), false, 3, 2, pad);
  return f;
}

Value trace_block(Tracer& g, const std::string& name, ResidualBlockImpl& block, const Value& x) {
  Value y = g.relu(g.batch_norm(name + ".bn1", block.bn1, g.conv(name + ".conv1", block.conv1, x)));
  y = g.batch_norm(name + ".bn2", block.bn2, g.conv(name + ".conv2", block.conv2, y));
  if (!block.conv3.is_empty()) y = g.batch_norm(name + ".bn3", block.bn3, g.conv(name + ".conv3", block.conv3, g.relu(y)));
  Value identity = x;
  if (!block.downsample_conv.is_empty())
    identity = g.batch_norm(name + ".downsample.1", block.downsample_bn, g.conv(name + ".downsample.0", block.downsample_conv, x));
  return g.relu(g.add(y, identity));
}

TracedFeatures trace_resnet(Tracer& g, ResNetImpl& net, const Value& input) {
  Value x = g.max_pool(g.relu(g.batch_norm("backbone.bn1", net.bn1, g.conv("backbone.conv1", net.conv1, input))), false, 3, 2, 1);
  TracedFeatures f;
  for (size_t s = 0; s < net.layers.size(); ++s) {
    for (size_t b = 0; b < net.layers[s].size(); ++b)
      x = trace_block(g, "backbone.layer" + std::to_string(s + 1) + "." + std::to_string(b), *net.layers[s][b], x);
    if (s == 1) f.stride8 = x;
    if (s == 2) f.stride16 = x;
  }
  f.stride32 = x;
  return f;
}

Value trace_basic_conv(Tracer& g, const std::string& name, BasicConvImpl& layer, const Value& x) {
  return g.relu(g.batch_norm(name + ".bn", layer.bn, g.conv(name + ".conv", layer.conv, x)));
}

Value trace_inception(Tracer& g, const std::string& name, InceptionImpl& block, const Value& x) {
  const Value b1 = trace_basic_conv(g, name + ".branch1", *block.branch1, x);
  const Value b2 = trace_basic_conv(g, name + ".branch2.1", *block.branch2, trace_basic_conv(g, name + ".branch2.0", *block.branch2_reduce, x));
  const Value b3 = trace_basic_conv(g, name + ".branch3.1", *block.branch3, trace_basic_conv(g, name + ".branch3.0", *block.branch3_reduce, x));
  const Value b4 = trace_basic_conv(g, name + ".branch4.1", *block.branch4, g.max_pool(x, true, 3, 1, 1));
  return g.concat(g.concat(g.concat(b1, b2), b3), b4);
}

TracedFeatures trace_googlenet(Tracer& g, GoogLeNetImpl& net, Value x) {
  if (net.options.transform_input())
    x = g.affine(x, torch::tensor({0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5}).view({1, 3, 1, 1}),
                 torch::tensor({(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5}).view({1, 3, 1, 1}));
  x = g.max_pool(trace_basic_conv(g, "backbone.conv1", *net.conv1, x), true, 3, 2);
  x = trace_basic_conv(g, "backbone.conv3", *net.conv3, trace_basic_conv(g, "backbone.conv2", *net.conv2, x));
  x = g.max_pool(x, true, 3, 2);
  TracedFeatures f;
  f.stride8 = trace_inception(g, "backbone.inception3b", *net.inception3b, trace_inception(g, "backbone.inception3a", *net.inception3a, x));
  x = g.max_pool(f.stride8, true, 3, 2);
  const std::pair<const char*, Inception*> stage4[] = {{"4a", &net.inception4a}, {"4b", &net.inception4b}, {"4c", &net.inception4c},
                                                       {"4d", &net.inception4d}, {"4e", &net.inception4e}};
  for (const auto& [name, block] : stage4) x = trace_inception(g, std::string("backbone.inception") + name, **block, x);
  f.stride16 = x;
  x = trace_inception(g, "backbone.inception5a", *net.inception5a, g.max_pool(x, true, 2, 2));
  f.stride32 = trace_inception(g, "backbone.inception5b", *net.inception5b, x);
  return f;
}

Value trace_fcn_head(Tracer& g, const std::string& name, FCNHeadImpl& head, const Value& x) {
  const Value y = g.relu(g.batch_norm(name + ".1", head.bn, g.conv(name + ".0", head.conv, x)));
  return g.conv(name + ".4", head.score, y);
}

TracedFeatures trace_backbone(Tracer& g, BackboneImpl& backbone, const Value& x);

// TorchvisionFCNImpl::forward: the dilated ResNet, FCNHead on layer4, bilinear to the input size.
Value trace_torchvision_fcn(Tracer& g, TorchvisionFCNImpl& net, const Value& input) {
  const auto f = trace_backbone(g, *net.backbone, input);
  return g.resize_to(trace_fcn_head(g, "classifier", *net.classifier, f.stride32), input.t.size(2), input.t.size(3));
}

TracedFeatures trace_backbone(Tracer& g, BackboneImpl& backbone, const Value& x) {
  if (auto* googlenet = dynamic_cast<GoogLeNetImpl*>(&backbone)) return trace_googlenet(g, *googlenet, x);
  if (auto* vgg = dynamic_cast<VGGImpl*>(&backbone)) return trace_vgg(g, *vgg, x);
  if (auto* alexnet = dynamic_cast<AlexNetImpl*>(&backbone)) return trace_alexnet(g, *alexnet, x);
  return trace_resnet(g, dynamic_cast<ResNetImpl&>(backbone), x);
}

// FCNImpl::forward, op for op.
Value trace_fcn(Tracer& g, FCNImpl& net, const Value& input) {
  const bool reference = net.options.geometry() == Geometry::kReference;
  const int64_t h = input.t.size(2), w = input.t.size(3);
  const Value padded = reference ? input : g.pad(input, 0, (32 - h % 32) % 32, 0, (32 - w % 32) % 32);
  const auto f = trace_backbone(g, *net.backbone, padded);
  // The skips' score layers, on the at-once scaled maps where the net scales them.
  const auto score_pool4 = [&] {
    return g.conv("score_pool4", net.score_pool4, net.options.at_once() ? g.scale(f.stride16, kAtOnceScalePool4) : f.stride16);
  };
  const auto score_pool3 = [&] {
    return g.conv("score_pool3", net.score_pool3, net.options.at_once() ? g.scale(f.stride8, kAtOnceScalePool3) : f.stride8);
  };
  Value x = f.stride32;
  if (!net.fc6.is_empty()) {
    if (!reference) {
      const int64_t k = net.options.fc_kernel();
      x = g.pad(x, (k - 1) / 2, k / 2, (k - 1) / 2, k / 2);
    }
    x = g.relu(g.conv("fc6", net.fc6, x));
    x = g.relu(g.conv("fc7", net.fc7, x));
  }
  const Value score = g.conv("score_fr", net.score_fr, x);
  const int64_t stride = net.options.stride();
  if (!reference) {
    x = g.conv_transpose("upscore", net.upscore, score);
    if (stride <= 16) x = g.add(x, g.conv_transpose("upscore16", net.upscore16, score_pool4()));
    if (stride == 8) x = g.add(x, g.conv_transpose("upscore8", net.upscore8, score_pool3()));
    return g.crop(x, 0, 0, h, w);
  }
  // The Crop layers' offsets, derived from the net's geometry (FCNImpl::crops, coord_map.h).
  const auto& crops = net.crops();
  if (stride == 32) {
    x = g.conv_transpose("upscore", net.upscore, score);
  } else {
    Value up = g.conv_transpose("upscore2", net.upscore2, score);
    x = g.add(up, g.crop(score_pool4(), crops.pool4, crops.pool4, up.t.size(2), up.t.size(3)));
    if (stride == 16) {
      x = g.conv_transpose("upscore16", net.upscore16, x);
    } else {
      up = g.conv_transpose("upscore_pool4", net.upscore_pool4, x);
      x = g.add(up, g.crop(score_pool3(), crops.pool3, crops.pool3, up.t.size(2), up.t.size(3)));
      x = g.conv_transpose("upscore8", net.upscore8, x);
    }
  }
  return g.crop(x, crops.output, crops.output, h, w);
}

Value trace_double_conv(Tracer& g, const std::string& name, DoubleConvImpl& level, const Value& input) {
  Value x = g.conv(name + ".conv1", level.conv1, input);
  if (!level.bn1.is_empty()) x = g.batch_norm(name + ".bn1", level.bn1, x);
  x = g.conv(name + ".conv2", level.conv2, g.relu(x));
  if (!level.bn2.is_empty()) x = g.batch_norm(name + ".bn2", level.bn2, x);
  return g.relu(x);
}

// UNetImpl::forward, op for op.
Value trace_unet(Tracer& g, UNetImpl& net, const Value& input) {
  const bool same = net.options.padding() == Padding::kSame;
  const int64_t h = input.t.size(2), w = input.t.size(3), multiple = int64_t{1} << net.options.depth();
  Value x = same ? g.pad(input, 0, (multiple - h % multiple) % multiple, 0, (multiple - w % multiple) % multiple) : input;
  std::vector<Value> skips;
  for (size_t d = 0; d < net.encoder.size(); ++d) {
    x = trace_double_conv(g, "enc" + std::to_string(d), *net.encoder[d], x);
    skips.push_back(x);
    x = g.max_pool(x, false);
  }
  x = trace_double_conv(g, "bottom", *net.bottom, x);
  for (size_t i = 0; i < net.decoder.size(); ++i) {
    const std::string level = std::to_string(net.decoder.size() - 1 - i);
    if (net.options.upsample() == Upsample::kTransposed) {
      x = g.conv_transpose("up" + level, net.up_transposed[i], x);
    } else {
      x = g.conv("up" + level, net.up_convs[i], g.upsample2x(x));
    }
    const auto& skip = skips[skips.size() - 1 - i];
    const int64_t top = (skip.t.size(2) - x.t.size(2)) / 2, left = (skip.t.size(3) - x.t.size(3)) / 2;
    x = trace_double_conv(g, "dec" + level, *net.decoder[i], g.concat(g.crop(skip, top, left, x.t.size(2), x.t.size(3)), x));
  }
  x = g.conv("score", net.score, x);
  return same ? g.crop(x, 0, 0, h, w) : x;
}

void set_shape(onnx::ValueInfoProto* info, const std::string& name, const std::vector<int64_t>& shape, bool dynamic) {
  info->set_name(name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  const char* symbols[] = {"batch", nullptr, "height", "width"};
  for (size_t i = 0; i < shape.size(); ++i) {
    auto* dim = tensor->mutable_shape()->add_dim();
    if (dynamic && symbols[i] != nullptr) {
      dim->set_dim_param(std::string(symbols[i]) + (name == "input" ? "" : "_out"));
    } else {
      dim->set_dim_value(shape[i]);
    }
  }
}

void add_metadata(onnx::ModelProto& proto, const std::string& key, const std::string& value) {
  auto* entry = proto.add_metadata_props();
  entry->set_key(key);
  entry->set_value(value);
}

// The probe size to trace at and the input rule stored in the file. A dynamic graph is traced at
// the nearest size the net takes (valid U-Net: a legal side; otherwise a multiple of its pooling).
struct ProbeSize {
  int64_t height, width, input_multiple = 0;
  std::string input_rule = "any H x W";
};

ProbeSize probe_size(const FCNImpl* fcn_net, const UNetImpl* unet, const OnnxExportOptions& options) {
  ProbeSize probe{options.height, options.width};
  if (!options.dynamic) return probe;
  if (fcn_net != nullptr && fcn_net->options.geometry() == Geometry::kReference)
    fail("OnnxExportOptions.dynamic", "the reference geometry's crops depend on the input size; export it at a fixed size (OnnxExportOptions.height/width)");
  probe.input_multiple = fcn_net != nullptr ? 32 : int64_t{1} << unet->options.depth();
  if (unet != nullptr && unet->options.padding() == Padding::kValid) {
    probe.height = unet->nearest_legal_sizes(probe.height).second;
    probe.width = unet->nearest_legal_sizes(probe.width).second;
    probe.input_rule = "legal valid U-Net sides (fcn predict pads to them); e.g. " + std::to_string(probe.height);
  } else {
    const int64_t m = probe.input_multiple;
    probe.height = (probe.height + m - 1) / m * m;
    probe.width = (probe.width + m - 1) / m * m;
    probe.input_rule = "H and W multiples of " + std::to_string(m) + " (pad by reflection, crop back)";
  }
  return probe;
}

// What a deployment needs besides the graph: the model's config, classes, palette and preprocessing.
void add_model_metadata(onnx::ModelProto& proto, const Model& model, const std::string& input_rule) {
  const auto meta = meta_to_json(model.meta);
  add_metadata(proto, "fcn.format", "fcn-onnx 1");
  add_metadata(proto, "fcn.config", net_config(*model.net).dump());
  add_metadata(proto, "fcn.class_names", meta["class_names"].dump());
  add_metadata(proto, "fcn.palette", meta["palette"].dump());
  add_metadata(proto, "fcn.mean", nlohmann::json(model.meta.normalization.mean).dump());
  add_metadata(proto, "fcn.std", nlohmann::json(model.meta.normalization.std).dump());
  const int64_t channels = model.net->in_channels();
  const std::string pixels = model.meta.slice_context > 0 ? "a volume's slices k-N..k+N as channels (fcn.slice_context), each mapped to 0..1"
                             : channels == 1            ? "gray pixels / 255 (or / 65535 for 16-bit)"
                             : channels == 3            ? "RGB pixels / 255 (or / 65535 for 16-bit)"
                                                        : std::to_string(channels) + " channels (e.g. MRI modalities), each mapped to 0..1";
  add_metadata(proto, "fcn.preprocessing", pixels + ", then (x - mean) / std per channel; NCHW float32");
  add_metadata(proto, "fcn.input_sizes", input_rule);
  add_metadata(proto, "fcn.training", model.meta.training);
  if (model.meta.slice_context > 0)  // 2.5-D: a volume's slices k-N..k+N (the ends repeated) are the channels
    add_metadata(proto, "fcn.slice_context", std::to_string(model.meta.slice_context));
  if (model.meta.pixel_mm)  // slices resampled in-plane to pixels of [x, y] mm before the net, its scores back after it
    add_metadata(proto, "fcn.pixel_mm", meta["pixel_mm"].dump());
  if (!model.meta.axes.empty())  // volumes cut into slices as ones stored in this orientation would be
    add_metadata(proto, "fcn.axes", model.meta.axes);
}

// A model with fcn's producer fields and an empty graph named after the architecture.
onnx::ModelProto empty_model(const std::string& arch, int64_t opset_version) {
  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name("fcn");
  proto.set_producer_version("0.1.0");
  proto.set_doc_string("fcn " + arch + " segmentation net: input N x C x H x W, (pixel / 255 - mean) / std; "
                       "output N x classes x H x W logits (argmax = class)");
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(opset_version);
  proto.mutable_graph()->set_name("fcn_" + arch);
  return proto;
}

}  // namespace

std::string onnx_refusal(const Model& model) {
  const auto* net = model.net.get();
  if (dynamic_cast<const FCNImpl*>(net) != nullptr || dynamic_cast<const UNetImpl*>(net) != nullptr ||
      dynamic_cast<const TorchvisionFCNImpl*>(net) != nullptr)
    return "";
  return "only fcn, unet and torchvision-fcn models export to ONNX, not '" + net->arch() + "'";
}

OnnxExportSummary export_onnx(const Model& model, const std::string& path, const OnnxExportOptions& options) {
  auto* fcn_net = dynamic_cast<FCNImpl*>(model.net.get());
  auto* unet = dynamic_cast<UNetImpl*>(model.net.get());
  auto* torchvision = dynamic_cast<TorchvisionFCNImpl*>(model.net.get());
  if (const auto refusal = onnx_refusal(model); !refusal.empty()) fail(path, refusal);
  if (torchvision != nullptr && options.dynamic)
    fail("OnnxExportOptions.dynamic", "torchvision-fcn resizes to the input's size: export it at a fixed size");
  if (options.opset < 11) fail("OnnxExportOptions.opset", std::to_string(options.opset) + " is below 11 (Resize and Pad need 11+)");
  if (options.height < 1 || options.width < 1) fail("OnnxExportOptions.height/width", "the export size must be positive");
  OnnxExportSummary summary;
  const auto size = probe_size(fcn_net, unet, options);
  const int64_t height = size.height, width = size.width;
  summary.input_multiple = size.input_multiple;

  auto proto = empty_model(model.net->arch(), options.opset);
  auto& graph = *proto.mutable_graph();

  torch::NoGradGuard no_grad;
  const bool was_training = model.net->is_training();
  model.net->eval();
  const auto probe = torch::randn({1, model.net->in_channels(), height, width}, torch::TensorOptions().dtype(torch::kFloat));
  Tracer tracer(graph, options.dynamic);
  const Value input{"input", probe};
  const Value output = fcn_net != nullptr ? trace_fcn(tracer, *fcn_net, input)
                       : unet != nullptr  ? trace_unet(tracer, *unet, input)
                                          : trace_torchvision_fcn(tracer, *torchvision, input);
  const auto expected = model.net->forward(probe);
  model.net->train(was_training);
  summary.max_abs_error = (output.t - expected).abs().max().item<double>();
  TORCH_CHECK(summary.max_abs_error <= 1e-4 * std::max(1.0, expected.abs().max().item<double>()),
              "ONNX export: the traced graph differs from the model's forward by ", summary.max_abs_error);

  // The graph's last op writes "logits".
  auto* last = graph.mutable_node(graph.node_size() - 1);
  TORCH_CHECK(last->output(0) == output.name, "ONNX export: the output is not the last node");
  last->set_output(0, "logits");
  set_shape(graph.add_input(), "input", probe.sizes().vec(), options.dynamic);
  set_shape(graph.add_output(), "logits", output.t.sizes().vec(), options.dynamic);
  summary.nodes = tracer.nodes();
  summary.input_shape = probe.sizes().vec();
  summary.output_shape = output.t.sizes().vec();
  if (options.dynamic) summary.input_shape[0] = summary.input_shape[2] = summary.input_shape[3] = -1;
  if (options.dynamic) summary.output_shape[0] = summary.output_shape[2] = summary.output_shape[3] = -1;

  add_model_metadata(proto, model, size.input_rule);

  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "ONNX export: onnx::checker rejects the graph: ", first_line(e.what()));
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) fail(path, "cannot serialise the ONNX model (over 2 GB?)");
  write_file_atomic(path, bytes.data(), bytes.size(), Durability::kDurable);
  return summary;
}

}  // namespace fcn
