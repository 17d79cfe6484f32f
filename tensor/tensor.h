// The face of tensor/: values, views, kernels and file formats, with no gradients.
// Users who compute include autograd/autograd.h (or nn/nn.h), which includes this.
#pragma once

#include "blas.h"
#include "core.h"
#include "creation.h"
#include "dtype.h"
#include "error.h"
#include "generator.h"
#include "geometry.h"
#include "io.h"
#include "kernels.h"
#include "shape.h"
#include "storage.h"
#include "threads.h"
#include "view.h"
