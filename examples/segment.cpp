// Segment one image with a trained fcn model through the library API (no CLI):
//   segment MODEL.fcn IMAGE OUT   ->  OUT-labels.png (palette PNG of class indices), OUT-overlay.png
#include <iostream>

#include "fcn/formats/image.h"
#include "fcn/formats/png.h"
#include "fcn/infer/predictor.h"
#include "fcn/util/allocator.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: segment MODEL.fcn IMAGE OUT\n";
    return 2;
  }
  try {
    fcn::install_cpu_allocator();  // optional, process-wide: large activations reused, not page-faulted back
    const fcn::Predictor predict{argv[1], torch::kCPU};
    const torch::Tensor image = fcn::read_image(argv[2]);  // C x H x W in [0, 1]
    const fcn::Prediction result = predict(image);

    const std::string out = argv[3];
    fcn::write_png_indexed(out + "-labels.png", result.labels.to(torch::kByte), result.palette);
    fcn::write_png(out + "-overlay.png", result.overlay(image));

    const std::vector<int64_t> pixels = result.class_pixels();
    for (size_t c = 0; c < pixels.size(); ++c)
      if (pixels[c] > 0) std::cout << result.class_names[c] << ": " << pixels[c] << " px\n";
    std::cout << "segmented in " << result.milliseconds << " ms\n";
  } catch (const std::exception& e) {
    std::cerr << "segment: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
