// Custom ops: apply_function (a Function subclass) and custom_gradient.
#include "autograd/function.h"

namespace encore {
namespace {
// An op's outputs must be new tensors: returning an input handle unchanged would make the
// output and the input the same tape identity. Such outputs become fresh aliases.
void fresh_outputs(const char* op, Tensors& outs, const Tensors& inputs) {
  for (Tensor& o : outs) {
    ENCORE_CHECK(o.defined(), op, "forward returned an undefined tensor");
    for (const Tensor& in : inputs)
      if (in.defined() && o.same(in)) o = o.detach();
  }
}
}  // namespace

Tensors apply_function(std::shared_ptr<Function> f, const Tensors& inputs) {
  ENCORE_CHECK(f != nullptr, "apply_function", "null Function");
  Tensors outs;
  {
    NoGrad no_grad;
    outs = f->forward(inputs);
  }
  fresh_outputs(f->name(), outs, inputs);
  // The tape holds the saved tensors (and checks their versions); f holds them only while
  // its backward() runs, so one Function object can be applied more than once.
  Tensors saved = std::move(f->saved_);
  f->saved_.clear();
  record(
      f->name(), inputs, outs,
      [f, n_in = inputs.size()](const Tensors& saved, const Tensors& douts) {
        f->saved_ = saved;
        Tensors d;
        try {
          d = f->backward(douts);
        } catch (...) {
          f->saved_.clear();
          throw;
        }
        f->saved_.clear();
        ENCORE_CHECK(d.size() == n_in, f->name(), "backward returned ", d.size(), " gradients for ",
                     n_in, " inputs");
        return d;
      },
      saved);
  return outs;
}

Tensors custom_gradient(const char* name, const Tensors& inputs, const CustomForward& forward,
                        CustomBackward backward) {
  Tensors outs;
  {
    NoGrad no_grad;
    outs = forward(inputs);
  }
  fresh_outputs(name, outs, inputs);
  // One list: the inputs, then the outputs. The tape keeps it, checks it for in-place
  // changes, and hands it back to the vjp; the closure captures no tensor of its own.
  Tensors saved = inputs;
  saved.insert(saved.end(), outs.begin(), outs.end());
  record(
      name, inputs, outs,
      [name, n_in = inputs.size(), backward = std::move(backward)](const Tensors& saved,
                                                                   const Tensors& douts) {
        Tensors ins(saved.begin(), saved.begin() + static_cast<std::ptrdiff_t>(n_in));
        Tensors outs(saved.begin() + static_cast<std::ptrdiff_t>(n_in), saved.end());
        Tensors d = backward(ins, outs, douts);
        ENCORE_CHECK(d.size() == n_in, name, "backward returned ", d.size(), " gradients for ",
                     n_in, " inputs");
        return d;
      },
      saved);
  return outs;
}

}  // namespace encore
