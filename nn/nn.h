// The face of nn/: modules, layers, initialisers, losses, optimizers, checkpoints, data, the
// training loop and plots.
#pragma once

#include "autograd/autograd.h"
#include "nn/activation.h"
#include "nn/checkpoint.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/data.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "nn/noise.h"
#include "nn/norm.h"
#include "nn/optim/clip.h"
#include "nn/optim/optimizer.h"
#include "nn/optim/schedule.h"
#include "nn/plot.h"
#include "nn/recurrent.h"
#include "nn/train.h"
