// Training-run checkpoints in one safetensors file.
#include "nn/checkpoint.h"

#include <array>
#include <cstring>

namespace encore::nn {
namespace {
constexpr const char* kFormat = "encore-checkpoint-1";
constexpr std::array<const char*, 4> kReserved = {"format", "step", "epoch", "optimizer"};

std::string quoted(const std::string& path) { return "'" + path + "'"; }

bool reserved(const std::string& key) {
  for (const char* r : kReserved)
    if (key == r) return true;
  return false;
}

int64_t parse_int(const std::string& path, const std::map<std::string, std::string>& meta,
                  const std::string& key) {
  auto it = meta.find(key);
  ENCORE_CHECK(it != meta.end(), "load_checkpoint", quoted(path), ": metadata lacks '", key, "'");
  try {
    size_t used = 0;
    int64_t v = std::stoll(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (...) {
  }
  ENCORE_FAIL("load_checkpoint", quoted(path), ": metadata '", key, "' is not an integer: '",
              it->second, "'");
}
}  // namespace

void save_checkpoint(const std::string& path, const Module& model,
                     const optim::Optimizer& optimizer, const Generator& gen,
                     const TrainingState& state, const Batches* batches) {
  for (const auto& [k, v] : state.extra)
    ENCORE_CHECK(!reserved(k), "save_checkpoint", quoted(path), ": extra key '", k,
                 "' is reserved (format, step, epoch, optimizer)");
  std::map<std::string, Tensor> tensors;
  for (const auto& [k, t] : model.state_dict()) tensors.emplace("model." + k, t);
  for (const auto& [k, t] : optimizer.state_dict()) tensors.emplace("optim." + k, t);
  Generator::State gs = gen.state();
  Tensor g = empty({4}, DType::i64);
  std::memcpy(g.data<int64_t>(), gs.data(), sizeof(gs));  // u64 bits kept as i64
  tensors.emplace("generator.state", g);
  if (batches && batches->order().defined()) tensors.emplace("data.order", batches->order());
  std::map<std::string, std::string> meta = state.extra;
  meta["format"] = kFormat;
  meta["step"] = std::to_string(state.step);
  meta["epoch"] = std::to_string(state.epoch);
  meta["optimizer"] = optimizer.name();
  // As in load_checkpoint: the file's errors keep their detail but start with the user's call.
  try {
    io::save_safetensors(path, tensors, meta);
  } catch (const Error& e) {
    throw Error(std::string("save_checkpoint: ") + e.what());
  }
}

TrainingState load_checkpoint(const std::string& path, Module& model, optim::Optimizer& optimizer,
                              Generator& gen, Batches* batches) {
  const std::string where = quoted(path);
  // The file's own errors keep their detail but start with the function the user called.
  io::SafeTensors file;
  try {
    file = io::load_safetensors(path);
  } catch (const Error& e) {
    throw Error(std::string("load_checkpoint: ") + e.what());
  }
  auto fmt = file.metadata.find("format");
  ENCORE_CHECK(fmt != file.metadata.end() && fmt->second == kFormat, "load_checkpoint", where,
               ": not an encore training checkpoint (metadata 'format' is ",
               fmt == file.metadata.end() ? "absent" : "'" + fmt->second + "'", ", expected '",
               kFormat, "'; a file written by Module::save loads with Module::load)");
  auto opt_name = file.metadata.find("optimizer");
  ENCORE_CHECK(opt_name != file.metadata.end() && opt_name->second == optimizer.name(),
               "load_checkpoint", where, ": written by optimizer '",
               opt_name == file.metadata.end() ? "?" : opt_name->second, "', loading into '",
               optimizer.name(), "'");
  std::map<std::string, Tensor> model_state, optim_state;
  Tensor gstate, order;
  for (auto& [k, t] : file.tensors) {
    if (k.rfind("model.", 0) == 0)
      model_state.emplace(k.substr(6), t);
    else if (k.rfind("optim.", 0) == 0)
      optim_state.emplace(k.substr(6), t);
    else if (k == "generator.state")
      gstate = t;
    else if (k == "data.order")
      order = t;
    else
      ENCORE_FAIL("load_checkpoint", where, ": unexpected tensor '", k, "'");
  }
  ENCORE_CHECK(gstate.defined() && gstate.dtype() == DType::i64 && gstate.shape() == Shape{4},
               "load_checkpoint", where, ": missing or malformed 'generator.state'");
  TrainingState st;
  st.step = parse_int(path, file.metadata, "step");
  st.epoch = parse_int(path, file.metadata, "epoch");
  for (auto& [k, v] : file.metadata)
    if (!reserved(k)) st.extra[k] = v;

  // Nothing is modified unless everything fits: the model and the optimizer each check all
  // of their state before copying any of it, the batches' order is checked here, and the
  // model is restored from a backup when the optimizer rejects its state afterwards.
  if (batches && order.defined()) {
    try {
      Batches probe = *batches;
      probe.set_order(order);
    } catch (const Error& e) {
      ENCORE_FAIL("load_checkpoint", where, ": 'data.order' does not fit the batches: ", e.what());
    }
  }
  std::map<std::string, Tensor> backup;
  for (const auto& [k, t] : model.state_dict()) backup.emplace(k, t.clone());
  try {
    model.load_state_dict(model_state, true);
  } catch (const Error& e) {
    ENCORE_FAIL("load_checkpoint", where, ": ", e.what());
  }
  try {
    optimizer.load_state_dict(optim_state);
  } catch (const Error& e) {
    model.load_state_dict(backup, true);
    ENCORE_FAIL("load_checkpoint", where, ": ", e.what());
  }
  if (batches && order.defined()) batches->set_order(order);
  Generator::State gs;
  std::memcpy(gs.data(), gstate.data<int64_t>(), sizeof(gs));
  gen.set_state(gs);
  return st;
}

}  // namespace encore::nn
