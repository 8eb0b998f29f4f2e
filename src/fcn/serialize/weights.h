// Weight files and weight import: PyTorch archives (.pth/.pt from torch.save) and safetensors,
// read into name -> tensor state dicts and copied into nets by name, strictly: a missing key, an
// unexpected key or a shape mismatch is an fcn::Error naming the file and the key.
#pragma once

#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "fcn/formats/safetensors.h"
#include "fcn/formats/torch_archive.h"
#include "fcn/models/classifier.h"
#include "fcn/models/torchvision_fcn.h"

namespace fcn {

// Reads .pth/.pt (zip) or .safetensors, told apart by content, not by extension.
StateDict read_state_dict(const std::string& path);
// Writes a state dict PyTorch reads back with torch.load (a plain dict of tensors). Atomic.
void write_torch_state_dict(const std::string& path, const StateDict& weights);

// Parameters and buffers of a module, by their registered names.
StateDict state_dict(const torch::nn::Module& module);
// Strict copy by name; `source` names the file in errors. A floating-point value that is NaN or
// infinite (once copied into the net's dtype) is an error naming its key.
void load_state_dict(torch::nn::Module& module, const StateDict& weights, const std::string& source);

// torchvision vgg{11,13,16,19} (features.N.*, classifier.{0,3,6}.*) -> Classifier; with batch_norm, vgg*_bn
// (features.N conv, N+1 batch norm). Width, input channels, fc size, class count and the fc6 window k are read
// off the tensor shapes.
Classifier import_torchvision_vgg(const StateDict& weights, const std::string& source, int64_t depth = 16, bool batch_norm = false);
// torchvision alexnet (features.{0,3,6,8,10}.*, classifier.{1,4,6}.*) -> Classifier (k = 6 at 224).
Classifier import_torchvision_alexnet(const StateDict& weights, const std::string& source);
// torchvision resnet{18,34,50,101,152} (conv1, bn1, layer1..4, fc) -> Classifier with fc8 = fc; with `groups` and
// `width_per_group`, resnext (resnext50_32x4d: 32, 4) and wide_resnet (wide_resnet50_2: 1, 128).
Classifier import_torchvision_resnet(const StateDict& weights, const std::string& source, int64_t depth, int64_t groups = 1,
                                     int64_t width_per_group = 64);
// torchvision googlenet (conv1..3, inception3a..5b, fc; aux1/aux2 dropped, as the FCN paper does) ->
// Classifier. transform_input is not in the file: torchvision's pretrained weights want it (true).
Classifier import_torchvision_googlenet(const StateDict& weights, const std::string& source, bool transform_input);
// torchvision fcn_resnet{50,101} (backbone.*, classifier.*, aux_classifier.* if present) -> TorchvisionFCN.
TorchvisionFCN import_torchvision_fcn(const StateDict& weights, const std::string& source, int64_t depth);

// Which of the torchvision models above a state dict holds, by its keys alone ("torchvision-vgg16",
// "torchvision-vgg16_bn", "torchvision-resnet50", "torchvision-resnext50_32x4d", "torchvision-fcn-resnet101", ... as
// fcn import names them; "" where none): the features' conv (or batch norm) count for VGG and AlexNet, ResNet's
// blocks (basic or bottleneck, layer3's count) and its first 3x3 conv's groups and width, googlenet's inception
// modules, the segmentation FCN's backbone. A guess to try: the import itself checks every shape.
std::string torchvision_format(const StateDict& weights);
// Where torchvision_format finds none: which torchvision model it is that fcn does not import, for the error
// ("deeplabv3_resnet50", "fcn_resnet152", "densenet", "mobilenet_v3", "vit", ...);
// "" where its keys are none that fcn knows.
std::string torchvision_unimported(const StateDict& weights);

}  // namespace fcn
