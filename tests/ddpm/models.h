/* Denoisers for the ddpm tests whose outputs are known in closed form. */
#ifndef NANODIFF_TESTS_DDPM_MODELS_H
#define NANODIFF_TESTS_DDPM_MODELS_H

#include "ddpm/ddpm.h"

/* One parameter: out = w x_t (w a [1] tensor), a module with "w". */
typedef struct scale_model {
    nd_module base;
    nd_tensor *w;
} scale_model;
scale_model *scale_model_new(float w);
/* Its denoiser, predicting `predicts`. */
nd_denoiser scale_model_denoiser(scale_model *m, nd_prediction predicts);

#endif
