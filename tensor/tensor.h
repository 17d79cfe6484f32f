// The face of tensor/: values, views, kernels and file formats, with no gradients.
// Users who compute include autograd/autograd.h (or nn/nn.h), which includes this.
#pragma once

#include "tensor/core.h"
#include "tensor/creation.h"
#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/io.h"
#include "tensor/kernels.h"
#include "tensor/shape.h"
#include "tensor/storage.h"
#include "tensor/threads.h"
#include "tensor/view.h"
