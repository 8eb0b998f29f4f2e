// Multi-page TIFF stacks as dataset folders. Microscopy volumes come as stacks, and so does the U-Net
// paper's own data (ISBI 2012 EM segmentation: train-volume.tif, 30 pages of 512 x 512, and
// train-labels.tif, 0 = membrane, 255 = cell). fcn trains on folders of images/ + masks/, so a stack
// pair becomes one: page k is images/k.png and masks/k.png, which fcn data split then splits.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace fcn {

// Writes page k of `images_tiff` to OUT/images/NNN.png and, where `masks_tiff` is given, its page k
// to OUT/masks/NNN.png (NNN: k, zero-padded to 3 or more digits), each as stored: 8-bit, or 16-bit
// for gray pages that use the depth (a 0/255 mask reads as background / foreground, a 16-bit one as
// class indices). fcn::Error naming the file where the stacks differ in page count or page size, a
// page is 16-bit colour, or OUT already holds images/ or masks/. The folders are written as
// OUT/.images.partial and OUT/.masks.partial and renamed when every page is in: a run stopped midway
// leaves no half folder under the names (and the next run starts afresh). `progress(done, total)` is
// called as pages are written; after an error nothing is left behind. Returns the pages written.
int64_t unstack_tiff(const std::string& images_tiff, const std::string& masks_tiff, const std::string& out_dir,
                     const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace fcn
