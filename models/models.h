// The face of models/: the autoencoders of the seeds and the PCA baseline, each an ordinary
// Module (encode, decode, forward, loss) written on the tape.
#pragma once

#include "../nn/nn.h"
