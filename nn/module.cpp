// Module bookkeeping: registration, recursive traversal, train/eval, state dicts, files.
#include "nn/module.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <typeinfo>

namespace encore::nn {

std::string Module::describe() const {
  // The dynamic type's name, demangled ("encore::nn::Module" when nothing derives).
  const char* mangled = typeid(*this).name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(mangled);
}

void Module::check_name(const std::string& name) const {
  ENCORE_CHECK(!name.empty() && name.find('.') == std::string::npos, "register", "invalid name '",
               name, "' (must be non-empty and contain no '.')");
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& p) { return p.first == name; });
  };
  ENCORE_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), "register", "name '", name,
               "' is already registered in ", describe());
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_name(name);
  ENCORE_CHECK(t.defined(), "register_parameter", "parameter '", name, "' is undefined");
  ENCORE_CHECK(is_floating(t.dtype()), "register_parameter", "parameter '", name, "' has dtype ",
               t.dtype(), " (shape ", t.shape(), "); parameters must be f32 or f64");
  t.set_trainable(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_name(name);
  ENCORE_CHECK(t.defined(), "register_buffer", "buffer '", name, "' is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_name(name);
  ENCORE_CHECK(m != nullptr, "register_module", "module '", name, "' is null");
  children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix, NamedTensors* params, NamedTensors* buffers) const {
  if (params)
    for (const auto& [n, t] : params_) params->emplace_back(prefix + n, t);
  if (buffers)
    for (const auto& [n, t] : buffers_) buffers->emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", params, buffers);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", &out, nullptr);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", nullptr, &out);
  return out;
}

Tensors Module::parameters() const {
  // A module registered twice (tied weights) lists its parameters once, so an optimizer
  // updates each exactly once per step.
  Tensors out;
  for (auto& named : named_parameters()) {
    // NOTE: not a structured binding: clang 14 cannot capture one in a lambda (C++20 allows it).
    const Tensor& t = named.second;
    if (std::none_of(out.begin(), out.end(), [&](const Tensor& o) { return o.same(t); }))
      out.push_back(t);
  }
  return out;
}

Tensors Module::buffers() const {
  Tensors out;
  for (auto& [n, t] : named_buffers()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

std::map<std::string, Tensor> Module::state_dict() const {
  NamedTensors p, b;
  collect("", &p, &b);
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : p) out.emplace(n, t);
  for (auto& [n, t] : b) out.emplace(n, t);
  return out;
}

LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::map<std::string, Tensor> mine = state_dict();
  LoadReport report;
  std::vector<std::string> problems;
  for (const auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it == state.end()) {
      report.missing.push_back(name);
      continue;
    }
    const Tensor& src = it->second;
    if (src.shape() != t.shape())
      problems.push_back("'" + name + "' has shape " + to_string(src.shape()) +
                         " in the file but " + to_string(t.shape()) + " in the model");
    else if (src.dtype() != t.dtype())
      problems.push_back("'" + name + "' has dtype " + std::string(dtype_name(src.dtype())) +
                         " in the file but " + std::string(dtype_name(t.dtype())) +
                         " in the model");
  }
  for (const auto& [name, t] : state)
    if (!mine.count(name)) report.unexpected.push_back(name);
  // Values are checked only once every shape and dtype is right, so the checks can read them.
  if (problems.empty()) check_loaded_tree("", state, problems);
  if (strict) {
    for (const auto& n : report.missing) problems.push_back("missing key '" + n + "'");
    for (const auto& n : report.unexpected) problems.push_back("unexpected key '" + n + "'");
  }
  if (!problems.empty()) {
    std::ostringstream os;
    os << problems.size() << " problem(s) loading state into " << describe() << ":";
    for (const auto& p : problems) os << "\n  " << p;
    ENCORE_FAIL("load_state_dict", os.str());
  }
  NoGrad no_grad;
  for (auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it != state.end()) t.copy_(it->second);
  }
  return report;
}

void Module::check_loaded_state(const std::string&, const std::map<std::string, Tensor>&,
                                std::vector<std::string>&) const {}

void Module::check_loaded_tree(const std::string& prefix,
                               const std::map<std::string, Tensor>& state,
                               std::vector<std::string>& problems) const {
  check_loaded_state(prefix, state, problems);
  for (const auto& [n, m] : children_) m->check_loaded_tree(prefix + n + ".", state, problems);
}

void Module::save(const std::string& path,
                  const std::map<std::string, std::string>& metadata) const {
  // The file's errors keep their detail but start with the function the user called.
  try {
    io::save_safetensors(path, state_dict(), metadata);
  } catch (const Error& e) {
    throw Error(std::string("save: ") + e.what());
  }
}

LoadReport Module::load(const std::string& path, bool strict) {
  io::SafeTensors file;
  try {
    file = io::load_safetensors(path);
  } catch (const Error& e) {
    throw Error(std::string("load: ") + e.what());
  }
  try {
    return load_state_dict(file.tensors, strict);
  } catch (const Error& e) {
    ENCORE_FAIL("load", path, ": ", e.what());
  }
}

void Module::summary_into(std::string& out, const std::string& name, int depth) const {
  out += std::string(2 * depth, ' ') + (name.empty() ? "" : name + ": ") + describe();
  int64_t own = 0;
  for (const auto& [n, t] : params_) own += t.numel();
  if (own) out += "  [" + std::to_string(own) + " params]";
  out += "\n";
  for (const auto& [n, m] : children_) m->summary_into(out, n, depth + 1);
}

std::string Module::summary() const {
  std::string out;
  summary_into(out, "", 0);
  out += "total parameters: " + std::to_string(num_parameters()) + "\n";
  return out;
}

}  // namespace encore::nn
