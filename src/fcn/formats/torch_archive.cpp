#include "fcn/formats/torch_archive.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <torch/torch.h>

#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

struct Value;
// Values live in the unpickler's arena and point at each other with plain pointers: a dict that
// holds itself, or 200,000 nested lists, is then just data (no reference cycle to leak, no
// recursive destructor to overflow the stack), and nothing below walks a structure recursively.
using ValuePtr = Value*;

struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
  Kind kind = Kind::kNone;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // string, global "module.name", storage key
  std::vector<ValuePtr> items;
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;
  torch::Tensor tensor;  // storage (1-D) or tensor
};

torch::ScalarType storage_dtype(const std::string& global, const std::string& path) {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"torch.FloatStorage", torch::kFloat},   {"torch.DoubleStorage", torch::kDouble},
      {"torch.HalfStorage", torch::kHalf},     {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kLong},     {"torch.IntStorage", torch::kInt},
      {"torch.ShortStorage", torch::kShort},   {"torch.CharStorage", torch::kChar},
      {"torch.ByteStorage", torch::kByte},     {"torch.BoolStorage", torch::kBool}};
  const auto it = kTypes.find(global);
  if (it == kTypes.end()) fail(path, "unsupported tensor storage type " + global);
  return it->second;
}

std::vector<int64_t> int_tuple(const ValuePtr& v, const std::string& path) {
  if (v->kind != Value::Kind::kTuple) fail(path, "malformed tensor record (size/stride is not a tuple)");
  if (v->items.size() > 32) fail(path, "malformed tensor record (more than 32 dimensions)");
  std::vector<int64_t> out;
  for (const auto& item : v->items) {
    if (item->kind != Value::Kind::kInt || item->integer < 0)
      fail(path, "malformed tensor record (a size or stride is not a non-negative integer)");
    out.push_back(item->integer);
  }
  return out;
}

class Unpickler {
 public:
  Unpickler(std::vector<char> pickle, const StorageReader& storages, const std::string& path)
      : storages_reader_(storages), path_(path), owned_(std::move(pickle)), bytes_(owned_) {}
  // The pickle starting at `start` of `bytes` (one of several one after another: PyTorch's legacy format),
  // read in place. A StorageReader may give undefined storages (a first pass that only learns which there
  // are): the tensors of those are undefined, their views checked against the declared element counts.
  Unpickler(const std::vector<char>& bytes, size_t start, const StorageReader& storages, const std::string& path)
      : storages_reader_(storages), path_(path), bytes_(bytes), pos_(start) {}
  size_t end() const { return pos_; }  // after run(): the byte after the pickle's STOP

  ValuePtr run() {
    while (true) {
      const auto op = static_cast<unsigned char>(take(1)[0]);
      if (op == '.') return pop();  // STOP
      if (!push_value(op) && !build_structure(op)) unsupported(op);
    }
  }

 private:
  // Opcodes that push one value (protocol framing aside): None, bools, ints, floats, strings, globals.
  ValuePtr make(Value::Kind kind) {
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }

  bool push_value(unsigned char op) {
    switch (op) {
      case 0x80: take(1); return true;                                       // PROTO
      case 0x95: take(8); return true;                                       // FRAME
      case 'N': push(make(Value::Kind::kNone)); return true;                 // NONE
      case 0x88: case 0x89: {                                                // NEWTRUE / NEWFALSE
        auto v = make(Value::Kind::kBool);
        v->integer = op == 0x88;
        push(v);
        return true;
      }
      case 'K': push_int(read_uint(1)); return true;                         // BININT1
      case 'M': push_int(read_uint(2)); return true;                         // BININT2
      case 'J': push_int(static_cast<int32_t>(read_uint(4))); return true;   // BININT
      case 0x8a: {                                                           // LONG1
        const auto n = read_uint(1);
        if (n > 8) fail(path_, "integer too large in the pickle");
        int64_t value = static_cast<int64_t>(read_uint(n));
        if (n > 0 && n < 8 && (value >> (8 * n - 1)) & 1) value -= int64_t{1} << (8 * n);
        push_int(value);
        return true;
      }
      case 'G': {                                                            // BINFLOAT, big endian
        const auto raw = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<unsigned char>(raw[i]);
        auto v = make(Value::Kind::kFloat);
        std::memcpy(&v->real, &bits, 8);
        push(v);
        return true;
      }
      case 'X': case 'T': push_string(read_uint(4)); return true;            // BINUNICODE, BINSTRING
      case 0x8c: case 'U': push_string(read_uint(1)); return true;           // SHORT_BINUNICODE/BINSTRING
      case 0x8d: push_string(read_uint(8)); return true;                     // BINUNICODE8
      case 'c': {                                                            // GLOBAL
        auto v = make(Value::Kind::kGlobal);
        v->text = read_line();
        v->text += "." + read_line();
        push(v);
        return true;
      }
      case 0x93: {                                                           // STACK_GLOBAL
        auto name = pop(), module = pop();
        auto v = make(Value::Kind::kGlobal);
        v->text = module->text + "." + name->text;
        push(v);
        return true;
      }
      default: return false;
    }
  }

  // Opcodes that build or reference containers: marks, tuples, lists, dicts, the memo, calls,
  // and persistent ids (tensor storages).
  bool build_structure(unsigned char op) {
    switch (op) {
      case '(': marks_.push_back(stack_.size()); return true;                // MARK
      case ')': push(make(Value::Kind::kTuple)); return true;                // EMPTY_TUPLE
      case '}': push(make(Value::Kind::kDict)); return true;                 // EMPTY_DICT
      case ']': push(make(Value::Kind::kList)); return true;                 // EMPTY_LIST
      case 'q': memo_[read_uint(1)] = top(); return true;                    // BINPUT
      case 'r': memo_[read_uint(4)] = top(); return true;                    // LONG_BINPUT
      case 0x94: memo_[memo_.size()] = top(); return true;                   // MEMOIZE
      case 'h': push(memo(read_uint(1))); return true;                       // BINGET
      case 'j': push(memo(read_uint(4))); return true;                       // LONG_BINGET
      case 't': case 'l': {                                                  // TUPLE, LIST
        auto v = make(op == 't' ? Value::Kind::kTuple : Value::Kind::kList);
        v->items = pop_to_mark();
        push(v);
        return true;
      }
      case 0x85: case 0x86: case 0x87: {                                     // TUPLE1/2/3
        auto v = make(Value::Kind::kTuple);
        v->items.resize(op - 0x84);
        for (auto it = v->items.rbegin(); it != v->items.rend(); ++it) *it = pop();
        push(v);
        return true;
      }
      case 'R': case 0x81: {                                                 // REDUCE, NEWOBJ
        auto args = pop(), callable = pop();
        push(call(callable, args));
        return true;
      }
      case '0': pop(); return true;                                          // POP
      case 'b': pop(); return true;                                          // BUILD: a state dict's __dict__ (_metadata) carries no tensors
      case 's': {                                                            // SETITEM
        auto value = pop(), key = pop();
        dict(top())->entries.emplace_back(key, value);
        return true;
      }
      case 'd': case 'u': {                                                  // DICT, SETITEMS
        auto items = pop_to_mark();
        if (op == 'd') push(make(Value::Kind::kDict));
        for (size_t i = 0; i + 1 < items.size(); i += 2) dict(top())->entries.emplace_back(items[i], items[i + 1]);
        return true;
      }
      case 'a': {                                                            // APPEND
        auto value = pop();
        top()->items.push_back(value);
        return true;
      }
      case 'e': {                                                            // APPENDS
        auto items = pop_to_mark();
        auto& list = top()->items;
        list.insert(list.end(), items.begin(), items.end());
        return true;
      }
      case 'Q': push(load_storage(pop())); return true;                      // BINPERSID
      default: return false;
    }
  }

  [[noreturn]] void unsupported(unsigned char op) const {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", op);
    fail(path_, std::string("unsupported pickle opcode ") + hex + " at byte " + std::to_string(pos_ - 1) +
                    " (is this a state dict saved by torch.save?)");
  }

  std::string take(size_t n) {
    if (pos_ + n > bytes_.size()) fail(path_, "pickle data ends early (truncated file?)");
    std::string out(bytes_.data() + pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t read_uint(size_t n) {
    const auto raw = take(n);
    uint64_t value = 0;
    for (size_t i = 0; i < n; ++i) value |= static_cast<uint64_t>(static_cast<unsigned char>(raw[i])) << (8 * i);
    return value;
  }
  std::string read_line() {
    const auto end = std::find(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_), bytes_.end(), '\n');
    if (end == bytes_.end()) fail(path_, "pickle data ends early (truncated file?)");
    std::string line(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_), end);
    pos_ = static_cast<size_t>(end - bytes_.begin()) + 1;
    return line;
  }
  void push(ValuePtr v) { stack_.push_back(v); }
  void push_int(int64_t value) {
    auto v = make(Value::Kind::kInt);
    v->integer = value;
    v->real = static_cast<double>(value);
    push(v);
  }
  void push_string(uint64_t length) {
    if (length > bytes_.size()) fail(path_, "pickle string longer than the file (corrupt?)");
    auto v = make(Value::Kind::kString);
    v->text = take(length);
    push(v);
  }
  ValuePtr top() {
    if (stack_.empty()) fail(path_, "malformed pickle (stack underflow)");
    return stack_.back();
  }
  ValuePtr pop() {
    auto v = top();
    stack_.pop_back();
    if (!marks_.empty() && marks_.back() > stack_.size()) fail(path_, "malformed pickle (pop past a mark)");
    return v;
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail(path_, "malformed pickle (no mark)");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  ValuePtr memo(uint64_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) fail(path_, "malformed pickle (unknown memo " + std::to_string(key) + ")");
    return it->second;
  }
  ValuePtr dict(const ValuePtr& v) {
    if (v->kind != Value::Kind::kDict) fail(path_, "malformed pickle (item set on a non-dict)");
    return v;
  }

  ValuePtr call(const ValuePtr& callable, const ValuePtr& args) {
    const std::string& name = callable->text;
    const auto& a = args->items;
    if (callable->kind == Value::Kind::kGlobal && name == "collections.OrderedDict") return make(Value::Kind::kDict);
    // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks); _rebuild_tensor(storage, offset,
    // size, stride) in files saved before PyTorch 0.4.
    if (callable->kind == Value::Kind::kGlobal && (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") &&
        a.size() >= 4 && a[0]->kind == Value::Kind::kStorage) {
      const auto& storage = a[0]->tensor;
      const int64_t storage_numel = a[0]->integer;
      const auto sizes = int_tuple(a[2], path_);
      const auto strides = int_tuple(a[3], path_);
      if (sizes.size() != strides.size()) fail(path_, "malformed tensor record (sizes and strides differ in length)");
      if (a[1]->kind != Value::Kind::kInt || a[1]->integer < 0) fail(path_, "malformed tensor record (bad storage offset)");
      const int64_t offset = a[1]->integer;
      int64_t last = offset, numel = 1;
      for (size_t i = 0; i < sizes.size(); ++i) {
        numel = checked_mul(path_, "a tensor's element count", numel, sizes[i]);
        if (sizes[i] > 0 && __builtin_add_overflow(last, checked_mul(path_, "a tensor's extent", sizes[i] - 1, strides[i]), &last))
          fail(path_, "a tensor's extent overflows 64 bits (corrupt file?)");
      }
      if (numel > 0 && last >= storage_numel)
        fail(path_, "tensor view exceeds its storage record '" + printable(a[0]->text) + "' (corrupt file?)");
      // A view with more elements than its storage repeats elements (stride 0): a 1 KB file could
      // ask for gigabytes. State dicts hold plain tensors; such a one must be saved .contiguous().
      if (numel > storage_numel)
        fail(path_, "a tensor of " + std::to_string(numel) + " elements is a broadcast (stride-0) view of storage record '" +
                        printable(a[0]->text) + "' of " + std::to_string(storage_numel) +
                        "; fcn reads plain tensors (save it with .contiguous())");
      auto v = make(Value::Kind::kTensor);
      if (storage.defined()) v->tensor = storage.as_strided(sizes, strides, offset).clone();
      return v;
    }
    // _rebuild_parameter(data, requires_grad, hooks); restore_type_tag(value, "Dict[str, Tensor]") from LibTorch.
    if (callable->kind == Value::Kind::kGlobal && !a.empty() &&
        (name == "torch._utils._rebuild_parameter" || name == "torch.jit._pickle.restore_type_tag"))
      return a[0];
    fail(path_, "unsupported object '" + printable(name.substr(0, 80)) + "' in the pickle; expected a plain state dict of tensors");
  }

  ValuePtr load_storage(const ValuePtr& id) {
    // ('storage', <class torch.FloatStorage>, key, location, numel), and in the legacy format a 6th item,
    // the view's (key, offset, size) where the storage is a view of another (None for whole storages).
    if (id->kind != Value::Kind::kTuple || id->items.size() < 5 || id->items[0]->text != "storage" ||
        id->items[4]->kind != Value::Kind::kInt || id->items[4]->integer < 0)
      fail(path_, "malformed persistent id in the pickle");
    if (id->items.size() > 5 && id->items[5]->kind != Value::Kind::kNone)
      fail(path_, "holds a view of a storage (legacy PyTorch format): re-save it with torch.save(sd, f) from PyTorch 1.6 or later");
    const std::string key = id->items[2]->text;
    auto v = make(Value::Kind::kStorage);
    v->text = key;
    v->integer = id->items[4]->integer;
    if (const auto [seen, first] = numels_.emplace(key, v->integer); !first && seen->second != v->integer)
      fail(path_, "storage record '" + printable(key) + "' is declared with two sizes (corrupt file?)");
    auto cached = storages_.find(key);
    if (cached != storages_.end()) {
      v->tensor = cached->second;
      return v;
    }
    const auto dtype = storage_dtype(id->items[1]->text, path_);
    v->tensor = storages_reader_(key, dtype, id->items[4]->integer);
    storages_[key] = v->tensor;
    return v;
  }

  const StorageReader& storages_reader_;
  const std::string& path_;
  std::vector<char> owned_;
  const std::vector<char>& bytes_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::map<std::string, torch::Tensor> storages_;
  std::map<std::string, int64_t> numels_;  // each storage's element count, as its first persistent id declares it
  std::vector<std::unique_ptr<Value>> arena_;
};

// A dict value whose values are all tensors, as a state dict; false when it is anything else.
bool as_state_dict(const ValuePtr& value, StateDict& out) {
  if (value->kind != Value::Kind::kDict) return false;
  for (const auto& [key, item] : value->entries) {
    if (key->kind != Value::Kind::kString || item->kind != Value::Kind::kTensor) return false;
    out.emplace_back(key->text, item->tensor);
  }
  return true;
}

ArchiveDict to_archive_dict(const ValuePtr& root, const std::string& path) {
  if (root->kind != Value::Kind::kDict) fail(path, "does not hold a dict (expected torch.save(model.state_dict()))");
  ArchiveDict out;
  for (const auto& [key, value] : root->entries) {
    if (key->kind != Value::Kind::kString) fail(path, "the pickled dict has a non-string key");
    ArchiveEntry entry;
    switch (value->kind) {
      case Value::Kind::kString: entry.kind = ArchiveEntry::Kind::kString; entry.text = value->text; break;
      case Value::Kind::kBool:
      case Value::Kind::kInt: entry.kind = ArchiveEntry::Kind::kInt; entry.integer = value->integer; break;
      case Value::Kind::kFloat: entry.kind = ArchiveEntry::Kind::kFloat; entry.real = value->real; break;
      case Value::Kind::kTensor: entry.kind = ArchiveEntry::Kind::kTensor; entry.tensor = value->tensor; break;
      default:
        if (as_state_dict(value, entry.dict)) entry.kind = ArchiveEntry::Kind::kTensorDict;
        break;
    }
    out.emplace_back(key->text, std::move(entry));
  }
  return out;
}

size_t read_le(const unsigned char* p, int bytes) {
  size_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<size_t>(p[i]) << (8 * i);
  return value;
}

// Checks every record the zip's central directory declares before LibTorch's reader allocates it:
// stored records no larger than the file, deflated ones within deflate's maximal ratio, all within
// Limits.max_tensor_bytes. `read(pos, n)` returns n bytes at pos (or fewer at the end).
void check_zip_records(size_t file_size, const std::function<std::string(size_t, size_t)>& read, const std::string& path) {
  const size_t tail_size = std::min<size_t>(file_size, 65557);
  const std::string tail = read(file_size - tail_size, tail_size);
  const auto* t = reinterpret_cast<const unsigned char*>(tail.data());
  size_t eocd = std::string::npos;
  for (size_t i = tail.size() >= 22 ? tail.size() - 22 + 1 : 0; i-- > 0;)
    if (read_le(t + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) fail(path, "not a readable zip archive (no end of central directory; truncated?)");
  size_t entries = read_le(t + eocd + 10, 2), cd_size = read_le(t + eocd + 12, 4), cd_offset = read_le(t + eocd + 16, 4);
  if (eocd >= 20 && read_le(t + eocd - 20, 4) == 0x07064b50) {  // ZIP64 locator
    const std::string z = read(read_le(t + eocd - 20 + 8, 8), 56);
    const auto* zp = reinterpret_cast<const unsigned char*>(z.data());
    if (z.size() < 56 || read_le(zp, 4) != 0x06064b50) fail(path, "corrupt ZIP64 end of central directory");
    entries = read_le(zp + 32, 8);
    cd_size = read_le(zp + 40, 8);
    cd_offset = read_le(zp + 48, 8);
  }
  if (cd_offset > file_size || cd_size > file_size - cd_offset) fail(path, "zip central directory lies outside the file (truncated?)");
  const std::string cd = read(cd_offset, cd_size);
  const auto* c = reinterpret_cast<const unsigned char*>(cd.data());
  const int64_t bound = limits().max_tensor_bytes;
  size_t pos = 0;
  for (size_t n = 0; n < entries; ++n) {
    if (pos + 46 > cd.size() || read_le(c + pos, 4) != 0x02014b50) fail(path, "corrupt zip central directory");
    const size_t method = read_le(c + pos + 10, 2);
    size_t compressed = read_le(c + pos + 20, 4), size = read_le(c + pos + 24, 4);
    const size_t name_len = read_le(c + pos + 28, 2), extra_len = read_le(c + pos + 30, 2), comment_len = read_le(c + pos + 32, 2);
    if (pos + 46 + name_len + extra_len + comment_len > cd.size()) fail(path, "corrupt zip central directory");
    const std::string name(cd.data() + pos + 46, name_len);
    const size_t extra_end = pos + 46 + name_len + extra_len;
    for (size_t e = pos + 46 + name_len; e + 4 <= extra_end;) {  // ZIP64 extra field
      const size_t id = read_le(c + e, 2), len = read_le(c + e + 2, 2);
      if (e + 4 + len > extra_end) break;
      if (id == 0x0001) {
        size_t at = e + 4;
        if (size == 0xffffffffu && at + 8 <= e + 4 + len) size = read_le(c + at, 8), at += 8;
        if (compressed == 0xffffffffu && at + 8 <= e + 4 + len) compressed = read_le(c + at, 8);
      }
      e += 4 + len;
    }
    if (method != 0 && method != 8) fail(path, "zip record '" + printable(name) + "' uses compression method " + std::to_string(method));
    const bool too_big = compressed > file_size || (method == 0 && size != compressed) ||
                         (method == 8 && size / 1032 > compressed + 1) || size > static_cast<size_t>(bound);
    if (too_big)
      fail(path, "zip record '" + printable(name) + "' declares " + std::to_string(size) + " bytes, more than the file (" +
                     std::to_string(file_size) + " bytes) can hold or over Limits.max_tensor_bytes (corrupt or hostile file)");
    pos += 46 + name_len + extra_len + comment_len;
  }
}

ArchiveDict read_archive(caffe2::serialize::PyTorchStreamReader& reader, const std::string& path) {
  if (!reader.hasRecord("data.pkl")) fail(path, "zip archive without data.pkl: not written by torch.save");
  if (reader.hasRecord("byteorder")) {
    auto [data, size] = reader.getRecord("byteorder");
    if (std::string(static_cast<const char*>(data.get()), size) != "little") fail(path, "big-endian archives are not supported");
  }
  auto [data, size] = reader.getRecord("data.pkl");
  std::vector<char> pickle(static_cast<const char*>(data.get()), static_cast<const char*>(data.get()) + size);
  const StorageReader storages = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    const std::string record = "data/" + key;
    if (!reader.hasRecord(record)) fail(path, "archive has no record '" + printable(record) + "' (truncated file?)");
    auto [bytes, length] = reader.getRecord(record);
    const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
    if (static_cast<int64_t>(length) / element != numel || static_cast<int64_t>(length) % element != 0)
      fail(path, "record '" + printable(record) + "' holds " + std::to_string(length) + " bytes, not " + std::to_string(numel) +
                     " elements of " + std::to_string(element) + " bytes");
    auto storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    if (length > 0) std::memcpy(storage.data_ptr(), bytes.get(), length);
    return storage;
  };
  return parse_pickle_dict(std::move(pickle), storages, path);
}

// Reads `n` bytes at `pos` into `out`; returns how many there were (fewer at the end).
using LegacyBytes = std::function<size_t(size_t pos, size_t n, char* out)>;

// The first pickle of a legacy file holds the magic number 0x1950a86a20f9469cfc6c: LONG1 of 10 bytes, then STOP,
// after PROTO (and a FRAME from protocol 4 on). Where that pickle ends; 0 where `head` starts otherwise.
size_t legacy_magic_end(const std::vector<char>& head) {
  static const std::string kMagic("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e", 13);
  if (head.size() < 2 || static_cast<unsigned char>(head[0]) != 0x80) return 0;
  const size_t at = static_cast<unsigned char>(head[1]) >= 4 ? 11 : 2;  // PROTO n [FRAME size]
  return head.size() >= at + kMagic.size() && std::memcmp(head.data() + at, kMagic.data(), kMagic.size()) == 0 ? at + kMagic.size() : 0;
}

// The legacy format (torch_archive.h) from a file of `size` bytes: its pickles read from its head (up to 64
// MiB), the object's twice (first to learn its storages, then with them), each storage read straight into its
// tensor after its element count is checked against the pickle's, the file's size and the limits.
ArchiveDict read_legacy(size_t size, const LegacyBytes& read, const std::string& path) {
  std::vector<char> head(std::min<size_t>(size, size_t{64} << 20));
  head.resize(read(0, head.size(), head.data()));
  const size_t magic_end = legacy_magic_end(head);
  if (magic_end == 0) fail(path, "not a legacy PyTorch file (no magic number)");
  const StorageReader none = [&](const std::string&, torch::ScalarType, int64_t) -> torch::Tensor { fail(path, "a tensor where none belongs (corrupt file?)"); };
  Unpickler version(head, magic_end, none, path);
  if (const auto v = version.run(); v->kind != Value::Kind::kInt || v->integer != 1001)
    fail(path, "legacy PyTorch file of protocol version " + std::to_string(v->integer) + "; fcn reads 1001 (PyTorch 0.4 to 1.5)");
  Unpickler info(head, version.end(), none, path);
  for (const auto& [key, value] : info.run()->entries)
    if (key->text == "little_endian" && value->kind == Value::Kind::kBool && value->integer == 0) fail(path, "big-endian files are not supported");
  const size_t object = info.end();
  std::map<std::string, std::pair<torch::ScalarType, int64_t>> declared;
  const StorageReader learn = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    declared[key] = {dtype, numel};
    return torch::Tensor();
  };
  Unpickler first(head, object, learn, path);
  first.run();
  Unpickler keys(head, first.end(), none, path);
  const auto listed = keys.run();
  if (listed->kind != Value::Kind::kList) fail(path, "malformed legacy PyTorch file (no list of storage keys after the object)");
  std::map<std::string, size_t> at;  // key -> where its elements start
  size_t pos = keys.end();
  for (const auto& key : listed->items) {
    const auto it = declared.find(key->text);
    if (key->kind != Value::Kind::kString || it == declared.end() || at.count(key->text))
      fail(path, "malformed legacy PyTorch file (storage key '" + printable(key->text) + "' listed but not used, or twice)");
    char count[8];
    if (read(pos, 8, count) != 8) fail(path, "ends before storage '" + printable(key->text) + "' (truncated file?)");
    if (static_cast<int64_t>(read_le(reinterpret_cast<const unsigned char*>(count), 8)) != it->second.second)
      fail(path, "storage '" + printable(key->text) + "' holds another element count than its tensors say (corrupt file?)");
    const int64_t bytes = checked_mul(path, "a storage's size", it->second.second, static_cast<int64_t>(c10::elementSize(it->second.first)));
    if (bytes > limits().max_tensor_bytes || static_cast<uint64_t>(bytes) > size - std::min(size, pos + 8))
      fail(path, "storage '" + printable(key->text) + "' of " + std::to_string(bytes) + " bytes runs past the file's end (truncated?) or over Limits.max_tensor_bytes");
    at[key->text] = pos + 8;
    pos += 8 + static_cast<size_t>(bytes);
  }
  if (at.size() != declared.size()) fail(path, "malformed legacy PyTorch file (a storage its tensors use has no data)");
  const StorageReader storages = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    auto storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    const size_t bytes = storage.nbytes();
    if (read(at.at(key), bytes, static_cast<char*>(storage.data_ptr())) != bytes) fail(path, "ends inside storage '" + printable(key) + "'");
    return storage;
  };
  Unpickler second(head, object, storages, path);
  return to_archive_dict(second.run(), path);
}

class MemoryAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit MemoryAdapter(const std::vector<char>& bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char*) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<size_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  const std::vector<char>& bytes_;
};

}  // namespace

ArchiveDict parse_pickle_dict(std::vector<char> pickle, const StorageReader& storages, const std::string& path) {
  Unpickler unpickler(std::move(pickle), storages, path);
  return to_archive_dict(unpickler.run(), path);
}

namespace {
// A weights file opened for reads at any place: its size, and read(pos, n, out) giving how many bytes there were.
class OpenedFile {
 public:
  explicit OpenedFile(const std::string& path) {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) fail(path, "is a folder, not a file");
    in_.open(path, std::ios::binary | std::ios::ate);
    if (!in_) fail(path, "cannot open");
    size_ = static_cast<size_t>(in_.tellg());
  }
  size_t size() const { return size_; }
  size_t read(size_t pos, size_t n, char* out) {
    if (pos >= size_) return 0;
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(pos));
    in_.read(out, static_cast<std::streamsize>(std::min(n, size_ - pos)));
    return static_cast<size_t>(std::max<std::streamsize>(in_.gcount(), 0));
  }

 private:
  std::ifstream in_;
  size_t size_ = 0;
};
}  // namespace

ArchiveDict read_torch_archive_dict(const std::string& path) {
  OpenedFile file(path);
  check_zip_records(file.size(), [&](size_t pos, size_t n) {
    std::string out(n, '\0');
    out.resize(file.read(pos, n, out.data()));
    return out;
  }, path);
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    return read_archive(reader, path);
  } catch (const c10::Error& e) {
    fail(path, "not a readable PyTorch archive (truncated or corrupt?): " + first_line(e.what_without_backtrace()));
  }
}

ArchiveDict parse_torch_archive_dict(const std::vector<char>& bytes, const std::string& path) {
  check_zip_records(bytes.size(), [&](size_t pos, size_t n) {
    if (pos >= bytes.size()) return std::string();
    return std::string(bytes.data() + pos, std::min(n, bytes.size() - pos));
  }, path);
  try {
    caffe2::serialize::PyTorchStreamReader reader(std::make_shared<MemoryAdapter>(bytes));
    return read_archive(reader, path);
  } catch (const c10::Error& e) {
    fail(path, "not a readable PyTorch archive (truncated or corrupt?): " + first_line(e.what_without_backtrace()));
  }
}

bool is_torch_zip(const std::vector<char>& head) { return head.size() >= 4 && std::string(head.data(), 4) == "PK\x03\x04"; }

bool is_legacy_torch(const std::vector<char>& head) { return legacy_magic_end(head) > 0; }

ArchiveDict read_torch_legacy_dict(const std::string& path) {
  OpenedFile file(path);
  return read_legacy(file.size(), [&](size_t pos, size_t n, char* out) { return file.read(pos, n, out); }, path);
}

ArchiveDict parse_torch_legacy_dict(const std::vector<char>& bytes, const std::string& path) {
  return read_legacy(bytes.size(), [&](size_t pos, size_t n, char* out) -> size_t {
    if (pos >= bytes.size()) return 0;
    n = std::min(n, bytes.size() - pos);
    std::memcpy(out, bytes.data() + pos, n);
    return n;
  }, path);
}

StateDict state_dict_of(const ArchiveDict& dict, const std::string& path) {
  for (const auto& [key, entry] : dict)
    if ((key == "state_dict" || key == "model") && entry.kind == ArchiveEntry::Kind::kTensorDict) return entry.dict;
  StateDict out;
  for (const auto& [key, entry] : dict) {
    if (entry.kind != ArchiveEntry::Kind::kTensor) fail(path, "entry '" + printable(key) + "' is not a tensor");
    out.emplace_back(key, entry.tensor);
  }
  return out;
}

StateDict read_torch_archive(const std::string& path) { return state_dict_of(read_torch_archive_dict(path), path); }

void write_torch_archive(const std::string& path, const c10::IValue& value, Durability durability) {
  write_file_atomic(
      path,
      [&](const ByteSink& sink) {
        std::vector<char> pickle;  // data.pkl: the object's structure, small; the tensors are only referenced
        torch::jit::Pickler pickler([&](const char* data, size_t size) { pickle.insert(pickle.end(), data, data + size); });
        pickler.protocol();
        pickler.pushIValue(value);
        pickler.stop();
        caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
          sink(static_cast<const char*>(data), size);
          return size;
        });
        torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(), writer);
        writer.writeEndOfFile();
      },
      durability);
}

}  // namespace fcn
