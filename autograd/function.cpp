// Custom ops: Function::apply and custom_gradient.
#include "autograd/function.h"

namespace encore {
namespace {
// An op's outputs must be new tensors: returning an input handle unchanged would make the
// output and the input the same tape identity. Such outputs become fresh aliases.
void fresh_outputs(Tensors& outs, const Tensors& inputs) {
  for (Tensor& o : outs) {
    ENCORE_CHECK(o.defined(), "custom op", "forward returned an undefined tensor");
    for (const Tensor& in : inputs)
      if (in.defined() && o.same(in)) o = o.detach();
  }
}
}  // namespace

Tensors apply(std::shared_ptr<Function> f, const Tensors& inputs) {
  ENCORE_CHECK(f != nullptr, "apply", "null Function");
  Tensors outs;
  {
    NoGrad no_grad;
    outs = f->forward(inputs);
  }
  fresh_outputs(outs, inputs);
  Tensors saved = f->saved_;
  record(
      f->name(), inputs, outs,
      [f, n_in = inputs.size()](const Tensors& douts) {
        Tensors d = f->backward(douts);
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
  fresh_outputs(outs, inputs);
  record(
      name, inputs, outs,
      [name, inputs, outs, backward = std::move(backward)](const Tensors& douts) {
        Tensors d = backward(inputs, outs, douts);
        ENCORE_CHECK(d.size() == inputs.size(), name, "backward returned ", d.size(),
                     " gradients for ", inputs.size(), " inputs");
        return d;
      },
      inputs);
  return outs;
}

}  // namespace encore
