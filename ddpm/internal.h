/* Shared by the samplers of the ddpm layer (Algorithm 2 and DDIM): what
 * every sampling run sets up and undoes. Not part of the public API. */
#ifndef NANODIFF_DDPM_INTERNAL_H
#define NANODIFF_DDPM_INTERNAL_H

#include "ddpm.h"

/* A sampling run: the model in eval mode (its mode restored at the end),
 * the EMA's weights swapped in when the config names an EMA, no-grad
 * mode, and one noise stream per example, first_stream + k. */
typedef struct nd__sampling {
    const char *op;
    nd_denoiser d;
    const nd_sample_config *config;
    const int64_t *shape;
    int ndim;
    nd_rng *streams;
    bool was_training;
} nd__sampling;
void nd__sampling_begin(nd__sampling *ss, const char *op, nd_denoiser d, const int64_t *shape,
                        int ndim, const nd_sample_config *config);
/* N(0, I) of the run's shape, each example from its own stream. */
nd_tensor *nd__sampling_noise(nd__sampling *ss);
void nd__sampling_end(nd__sampling *ss);

#endif
