#include "fcn/formats/torch_archive.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <map>
#include <memory>
#include <torch/torch.h>

#include "fcn/util/error.h"

namespace fcn {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

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

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

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
  std::vector<int64_t> out;
  for (const auto& item : v->items) out.push_back(item->integer);
  return out;
}

class Unpickler {
 public:
  Unpickler(caffe2::serialize::PyTorchStreamReader& reader, const std::string& path) : reader_(reader), path_(path) {
    auto [data, size] = reader_.getRecord("data.pkl");
    bytes_.assign(static_cast<const char*>(data.get()), static_cast<const char*>(data.get()) + size);
  }

  ValuePtr run() {
    while (true) {
      const auto op = static_cast<unsigned char>(take(1)[0]);
      if (op == '.') return pop();  // STOP
      if (!push_value(op) && !build_structure(op)) unsupported(op);
    }
  }

 private:
  // Opcodes that push one value (protocol framing aside): None, bools, ints, floats, strings, globals.
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
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
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
    if (callable->kind == Value::Kind::kGlobal && name == "torch._utils._rebuild_tensor_v2" && a.size() >= 4 &&
        a[0]->kind == Value::Kind::kStorage) {
      const auto& storage = a[0]->tensor;
      const auto sizes = int_tuple(a[2], path_);
      const auto strides = int_tuple(a[3], path_);
      const int64_t offset = a[1]->integer;
      int64_t last = offset;
      for (size_t i = 0; i < sizes.size(); ++i) last += sizes[i] > 0 ? (sizes[i] - 1) * strides[i] : 0;
      if (last >= storage.numel() && storage.numel() > 0)
        fail(path_, "tensor view exceeds its storage record '" + a[0]->text + "' (corrupt file?)");
      auto v = make(Value::Kind::kTensor);
      v->tensor = storage.as_strided(sizes, strides, offset).clone();
      return v;
    }
    // _rebuild_parameter(data, requires_grad, hooks); restore_type_tag(value, "Dict[str, Tensor]") from LibTorch.
    if (callable->kind == Value::Kind::kGlobal && !a.empty() &&
        (name == "torch._utils._rebuild_parameter" || name == "torch.jit._pickle.restore_type_tag"))
      return a[0];
    fail(path_, "unsupported object '" + name + "' in the pickle; expected a plain state dict of tensors");
  }

  ValuePtr load_storage(const ValuePtr& id) {
    // ('storage', <class torch.FloatStorage>, key, location, numel)
    if (id->kind != Value::Kind::kTuple || id->items.size() < 5 || id->items[0]->text != "storage")
      fail(path_, "malformed persistent id in the pickle");
    const std::string key = id->items[2]->text;
    auto v = make(Value::Kind::kStorage);
    v->text = key;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) {
      v->tensor = cached->second;
      return v;
    }
    const auto dtype = storage_dtype(id->items[1]->text, path_);
    const int64_t numel = id->items[4]->integer;
    const std::string record = "data/" + key;
    if (!reader_.hasRecord(record)) fail(path_, "archive has no record '" + record + "' (truncated file?)");
    auto [data, size] = reader_.getRecord(record);
    auto storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    if (size != static_cast<size_t>(numel) * storage.element_size())
      fail(path_, "record '" + record + "' holds " + std::to_string(size) + " bytes, expected " +
                      std::to_string(numel * storage.element_size()));
    if (size > 0) std::memcpy(storage.data_ptr(), data.get(), size);
    storages_[key] = storage;
    v->tensor = storage;
    return v;
  }

  caffe2::serialize::PyTorchStreamReader& reader_;
  const std::string& path_;
  std::vector<char> bytes_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::map<std::string, torch::Tensor> storages_;
};

StateDict to_state_dict(const ValuePtr& root, const std::string& path) {
  if (root->kind != Value::Kind::kDict) fail(path, "does not hold a dict (expected torch.save(model.state_dict()))");
  for (const auto& [key, value] : root->entries) {
    if (key->kind == Value::Kind::kString && (key->text == "state_dict" || key->text == "model") &&
        value->kind == Value::Kind::kDict)
      return to_state_dict(value, path);
  }
  StateDict out;
  for (const auto& [key, value] : root->entries) {
    if (key->kind != Value::Kind::kString) fail(path, "state dict has a non-string key");
    if (value->kind != Value::Kind::kTensor) fail(path, "entry '" + key->text + "' is not a tensor");
    out.emplace_back(key->text, value->tensor);
  }
  return out;
}

}  // namespace

StateDict read_torch_archive(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (!reader.hasRecord("data.pkl")) fail(path, "zip archive without data.pkl: not written by torch.save");
    if (reader.hasRecord("byteorder")) {
      auto [data, size] = reader.getRecord("byteorder");
      if (std::string(static_cast<const char*>(data.get()), size) != "little")
        fail(path, "big-endian archives are not supported");
    }
    Unpickler unpickler(reader, path);
    return to_state_dict(unpickler.run(), path);
  } catch (const c10::Error& e) {
    fail(path, "not a readable PyTorch archive (truncated or corrupt?): " + first_line(e.what_without_backtrace()));
  }
}

}  // namespace fcn
