// safetensors files (Hugging Face's weight format): an 8-byte header length, a JSON header of
// {name: {dtype, shape, data_offsets}}, then the raw little-endian data. Every declared size is
// checked against the file before a tensor is allocated.
#pragma once

#include <string>
#include <vector>

#include "fcn/formats/torch_archive.h"  // StateDict

namespace fcn {

// By the head of a file (its first 9 bytes or more): the 8-byte header length, then the JSON header's '{'.
bool is_safetensors(const std::vector<char>& head);
StateDict read_safetensors(const std::string& path);  // throws fcn::Error naming the file
// The same from the file's bytes; `path` names it in errors.
StateDict parse_safetensors(const std::vector<char>& bytes, const std::string& path);

}  // namespace fcn
