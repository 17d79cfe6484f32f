// The face of autograd/: the tape, the differentiable ops, custom ops and gradcheck.
#pragma once

#include "../tensor/tensor.h"
#include "function.h"
#include "gradcheck.h"
#include "ops.h"
#include "tape.h"
