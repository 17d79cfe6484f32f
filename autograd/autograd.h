// The face of autograd/: the tape, the differentiable ops, custom ops and gradcheck.
#pragma once

#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "tensor/tensor.h"
