// The face of models/: the autoencoders of the seeds and the PCA baseline, each an ordinary
// Module (encode, decode, forward, loss) written on the tape.
#pragma once

#include "models/conv_autoencoder.h"
#include "models/denoising.h"
#include "models/dense_autoencoder.h"
#include "models/lstm_autoencoder.h"
#include "models/pca.h"
#include "models/recursive_autoencoder.h"
#include "models/sequence_data.h"
#include "models/vae.h"
#include "nn/nn.h"
