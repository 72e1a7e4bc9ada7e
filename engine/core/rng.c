#include "engine/core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void kb_rng_seed(kb_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        rng->s[i] = splitmix64(&x);
    }
}

void kb_rng_split(kb_rng *out, const kb_rng *rng, uint64_t stream)
{
    uint64_t x = rng->s[0] ^ rotl(rng->s[1], 17) ^ rotl(rng->s[2], 31) ^ rotl(rng->s[3], 47);
    x ^= stream * 0xd1b54a32d192ed03ULL;
    for (int i = 0; i < 4; i++) {
        out->s[i] = splitmix64(&x);
    }
}

uint64_t kb_rng_u64(kb_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double kb_rng_uniform(kb_rng *rng)
{
    return (double)(kb_rng_u64(rng) >> 11) * 0x1.0p-53;
}

uint64_t kb_rng_below(kb_rng *rng, uint64_t n)
{
    if (n == 0) {
        return 0;
    }
    /* Lemire-style rejection: draws below the threshold would bias the modulo */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t r = kb_rng_u64(rng);
        if (r >= threshold) {
            return r % n;
        }
    }
}

double kb_rng_normal(kb_rng *rng)
{
    for (;;) {
        double u = 2.0 * kb_rng_uniform(rng) - 1.0;
        double v = 2.0 * kb_rng_uniform(rng) - 1.0;
        double s = u * u + v * v;
        if (s > 0.0 && s < 1.0) {
            return u * sqrt(-2.0 * log(s) / s);
        }
    }
}

void kb_rng_shuffle(kb_rng *rng, size_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)kb_rng_below(rng, i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
