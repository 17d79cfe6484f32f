// The face of models/: the autoencoders of the seeds and the PCA baseline, each an ordinary
// Module (encode, decode, forward, loss) written on the tape.
#pragma once

#include "../nn/nn.h"
#include "conv_autoencoder.h"
#include "denoising.h"
#include "dense_autoencoder.h"
#include "lstm_autoencoder.h"
#include "pca.h"
#include "recursive_autoencoder.h"
#include "sequence_data.h"
#include "vae.h"
