// Module: the base of every layer and model. A module owns named parameters, buffers and
// submodules in insertion order; their dotted names are the checkpoint keys. Built-in layers
// are written exactly the way a user writes theirs: derive, register, add a forward.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/autograd.h"

namespace encore::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// What load() / load_state_dict() found: keys the module has but the file lacks, and keys
/// the file has but the module lacks. Shape and dtype mismatches always throw.
struct LoadReport {
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
};

class Module {
 public:
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The module's type for printing and error messages, e.g. "Linear(784 -> 400)". Override
  /// to describe yourself; by default it is the C++ class name (e.g. "GatedDense").
  virtual std::string describe() const;

  /// Every parameter of this module and its descendants, in registration order; a parameter
  /// shared by two submodules appears once.
  Tensors parameters() const;
  /// Parameters with dotted names, e.g. "encoder.0.weight".
  NamedTensors named_parameters() const;
  Tensors buffers() const;
  NamedTensors named_buffers() const;
  /// Direct submodules with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  /// Total number of parameter elements.
  int64_t num_parameters() const;

  /// Training mode (dropout active, batch statistics in batch norm); applies recursively.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Parameters and buffers by dotted name (aliases, not copies).
  std::map<std::string, Tensor> state_dict() const;
  /// Copies values into the existing parameters and buffers (their handles stay valid).
  /// Every shape or dtype mismatch, and in strict mode every missing or unexpected key, is
  /// reported in one encore::Error.
  LoadReport load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  /// Writes state_dict() as a safetensors file, atomically.
  void save(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;
  /// Reads a safetensors file written by save() (or by PyTorch with the same names).
  LoadReport load(const std::string& path, bool strict = true);

  /// A multi-line tree of the module and its children with parameter counts.
  std::string summary() const;

 protected:
  Module() = default;
  /// Registers t as a trainable parameter under name and returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor t);
  /// Registers a non-trainable state tensor (e.g. running statistics).
  Tensor register_buffer(const std::string& name, Tensor t);
  /// Checks the values load_state_dict is about to copy in, beyond their shapes and dtypes
  /// (already checked): a layer whose state has invariants (a count >= 0, a variance >= 0)
  /// overrides this and appends one message per violation to problems. state is the whole
  /// incoming state; this module's keys are prefix + its own names (a key may be absent).
  /// Nothing has been copied yet, so a rejected load leaves the module as it was.
  virtual void check_loaded_state(const std::string& prefix,
                                  const std::map<std::string, Tensor>& state,
                                  std::vector<std::string>& problems) const;
  /// Registers a submodule and returns it.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_name(const std::string& name) const;
  void collect(const std::string& prefix, NamedTensors* params, NamedTensors* buffers) const;
  void check_loaded_tree(const std::string& prefix, const std::map<std::string, Tensor>& state,
                         std::vector<std::string>& problems) const;
  void summary_into(std::string& out, const std::string& name, int depth) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace encore::nn
