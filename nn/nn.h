// The face of nn/: modules, layers, initialisers, losses, optimizers, checkpoints, data, the
// training loop and plots.
#pragma once

#include "../autograd/autograd.h"
#include "activation.h"
#include "checkpoint.h"
#include "container.h"
#include "conv.h"
#include "data.h"
#include "dropout.h"
#include "embedding.h"
#include "init.h"
#include "linear.h"
#include "loss.h"
#include "module.h"
#include "noise.h"
#include "norm.h"
#include "optim/clip.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "plot.h"
#include "recurrent.h"
#include "train.h"
