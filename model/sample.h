/* sample: turning logits into a token, with the log-prob of the distribution it came from.
 *
 * The sampling distribution is the model's softmax after temperature, then top-k, then top-p
 * (nucleus) truncation, renormalised over what is left, in that order (as transformers'
 * logits warpers). Temperature 0 is greedy: the distribution is a point mass on the arg max
 * (the lowest id among equals), so the behavior log-prob recorded is 0. Draws come from a
 * xoshiro256** generator seeded per request, so a seed reproduces a sequence whatever else
 * runs beside it.
 */
#ifndef CRU_MODEL_SAMPLE_H
#define CRU_MODEL_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define MDL_MAX_TOP          20 /* alternatives reported per token */
#define MDL_MAX_TOKENS       (1u << 20)
#define MDL_SAMPLING_VERSION 1

struct mdl_sampling {
    uint32_t version;  /* MDL_SAMPLING_VERSION */
    float temperature; /* 0: greedy; else 1e-4 .. 100 */
    uint32_t top_k;    /* keep the K most likely ids; 0: all */
    float top_p;       /* keep the smallest set of likeliest ids holding P; 1: all */
    uint64_t seed;
    uint32_t max_tokens;                   /* tokens to generate at most (1 .. MDL_MAX_TOKENS) */
    bool stop_at_eos;                      /* the model's eos_token_id(s) stop too */
    int32_t stop_ids[MDL_MAX_STOP_TOKENS]; /* ids that end the sequence (kept in the output) */
    uint32_t n_stop_ids;
    uint32_t n_top;    /* alternatives to report per token (0 .. MDL_MAX_TOP) */
    bool raw_logprobs; /* also report the model's own log-prob of each sampled id */
};

#define MDL_SAMPLING_INIT                                                                          \
    {                                                                                              \
        MDL_SAMPLING_VERSION, 1.0f, 0, 1.0f, 0, 256, true, { 0 }, 0, 0, false                      \
    }

/* Checks the bounds of every field; the error names the field. */
int mdl_sampling_check(const struct mdl_sampling *p);

struct mdl_rng {
    uint64_t s[4];
};

void mdl_rng_seed(struct mdl_rng *r, uint64_t seed);
uint64_t mdl_rng_next(struct mdl_rng *r);
/* A double in [0, 1). */
double mdl_rng_uniform(struct mdl_rng *r);

struct mdl_alt {
    int32_t id;
    float logprob; /* the model's log-prob (temperature 1, no truncation) */
};

struct mdl_token {
    int32_t id;
    float logprob;     /* under the distribution it was drawn from: the behavior log-prob */
    float raw_logprob; /* under the model's softmax (temperature 1, no truncation) */
    uint32_t n_top;
    struct mdl_alt top[MDL_MAX_TOP]; /* the model's likeliest ids, most likely first */
};

/* Scratch for one vocabulary size; not shared between threads. */
struct mdl_sampler;
int mdl_sampler_new(struct mdl_sampler **out, uint32_t vocab);
void mdl_sampler_free(struct mdl_sampler *s);

/* Draws one id from LOGITS (the sampler's vocabulary size) with parameters P. */
int mdl_sample(struct mdl_sampler *s, const float *logits, const struct mdl_sampling *p,
               struct mdl_rng *rng, struct mdl_token *out);

/* Writes the log-prob of every id under the sampling distribution of P (-INFINITY for ids that
 * truncation removed) into OUT (vocab floats): what mdl_sample draws from. */
int mdl_sample_logprobs(struct mdl_sampler *s, const float *logits, const struct mdl_sampling *p,
                        float *out);

#endif
