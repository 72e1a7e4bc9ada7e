/*
 * SHA-256 (FIPS 180-4), for content fingerprints: dataset fingerprints and the ids of runs
 * whose source gives none. Chosen over a fast non-cryptographic hash because ids are global:
 * knowledge bases of different teams must merge without accidental clashes.
 */
#ifndef KB_ENGINE_CORE_SHA256_H
#define KB_ENGINE_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    unsigned char block[64];
    size_t n_block;
} kb_sha256;

void kb_sha256_init(kb_sha256 *ctx);
void kb_sha256_update(kb_sha256 *ctx, const void *data, size_t n);
void kb_sha256_final(kb_sha256 *ctx, unsigned char digest[32]);
/** One-shot digest. */
void kb_sha256_digest(const void *data, size_t n, unsigned char digest[32]);
/** Lower-case hex of the first `n_bytes` bytes of `digest` into `out` (2*n_bytes+1 chars). */
void kb_sha256_hex(char *out, const unsigned char *digest, size_t n_bytes);

#ifdef __cplusplus
}
#endif

#endif
