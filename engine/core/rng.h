/*
 * kb_rng: the one source of randomness. Every random choice in kb takes a kb_rng seeded from
 * the user's --seed, so that the same seed gives the same result on every machine.
 *
 * Generator: xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom number
 * generators", 2018), seeded through splitmix64 so that any 64-bit seed gives a good state.
 * Normal deviates use the polar Box-Muller method without caching, so a stream's values do
 * not depend on how many normals were drawn before.
 */
#ifndef KB_ENGINE_CORE_RNG_H
#define KB_ENGINE_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_rng {
    uint64_t s[4];
} kb_rng;

/** Seed the generator; the same seed always gives the same stream. */
void kb_rng_seed(kb_rng *rng, uint64_t seed);
/** A fresh generator for substream `stream` of `rng` (independent of later draws on rng). */
void kb_rng_split(kb_rng *out, const kb_rng *rng, uint64_t stream);
/** 64 random bits. */
uint64_t kb_rng_u64(kb_rng *rng);
/** Uniform double in [0, 1) with 53 random bits. */
double kb_rng_uniform(kb_rng *rng);
/** Uniform integer in [0, n) without modulo bias; 0 when n == 0. */
uint64_t kb_rng_below(kb_rng *rng, uint64_t n);
/** Standard normal deviate. */
double kb_rng_normal(kb_rng *rng);
/** Fisher-Yates shuffle of `n` size_t values. */
void kb_rng_shuffle(kb_rng *rng, size_t *a, size_t n);

#ifdef __cplusplus
}
#endif

#endif
