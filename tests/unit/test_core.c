/* engine/core: errors, allocation hook, buffers and varints, RNG, SHA-256. */
#include <stdint.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/core/sha256.h"

static void test_error_set_formats_and_prefix_keeps_message(void)
{
    kb_error err = KB_ERROR_INIT;
    CHECK(kb_error_set(&err, KB_EFORMAT, "%s:%d: field '%s': bad\nline", "a.jsonl", 3, "lr") ==
          KB_EFORMAT);
    CHECK_STR(err.msg, "a.jsonl:3: field 'lr': bad line");
    kb_error_prefix(&err, "ingest: ");
    CHECK_STR(err.msg, "ingest: a.jsonl:3: field 'lr': bad line");
    CHECK(err.code == KB_EFORMAT);
    CHECK(kb_error_set(NULL, KB_EIO, "x") == KB_EIO);
    CHECK_STR(kb_strerror(KB_ENOMEM), "out of memory");
}

static void test_alloc_hook_fails_the_nth_allocation(void)
{
    kb_alloc_fail_after(2);
    void *a = kb_malloc(8), *b = kb_malloc(8), *c = kb_malloc(8);
    kb_alloc_fail_after(-1);
    CHECK(a != NULL && b != NULL && c == NULL);
    kb_free(a);
    kb_free(b);
    CHECK(kb_malloc_array(SIZE_MAX / 2, 4) == NULL);
}

static void test_varints_round_trip_at_the_edges(void)
{
    kb_buf b = KB_BUF_INIT;
    uint64_t u[] = {0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX};
    int64_t s[] = {0, -1, 1, -64, 64, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < 7; i++) {
        CHECK(kb_buf_put_varint(&b, u[i]) == KB_OK);
        CHECK(kb_buf_put_svarint(&b, s[i]) == KB_OK);
    }
    double nan_in = 0.0 / 0.0;
    kb_buf_put_f64(&b, -0.0);
    kb_buf_put_f64(&b, nan_in);
    kb_buf_put_str(&b, "héllo");
    kb_reader r;
    kb_reader_init(&r, b.data, b.len);
    for (size_t i = 0; i < 7; i++) {
        CHECK(kb_reader_varint(&r) == u[i]);
        CHECK(kb_reader_svarint(&r) == s[i]);
    }
    double z = kb_reader_f64(&r);
    CHECK(z == 0.0 && signbit(z));
    CHECK(isnan(kb_reader_f64(&r)));
    size_t n;
    const char *str = kb_reader_bytes(&r, &n);
    CHECK(n == 6 && memcmp(str, "héllo", 6) == 0);
    CHECK(!r.bad && kb_reader_left(&r) == 0);
    kb_reader_varint(&r);
    CHECK(r.bad);
    kb_buf_release(&b);
}

static void test_truncated_varint_is_flagged(void)
{
    unsigned char bytes[] = {0x80, 0x80};
    kb_reader r;
    kb_reader_init(&r, bytes, sizeof bytes);
    kb_reader_varint(&r);
    CHECK(r.bad);
    unsigned char len[] = {0x05, 'a'};
    kb_reader_init(&r, len, sizeof len);
    size_t n;
    CHECK(kb_reader_bytes(&r, &n) == NULL && r.bad);
}

static void test_rng_is_deterministic_and_uniform_enough(void)
{
    kb_rng a, b;
    kb_rng_seed(&a, 42);
    kb_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) {
        CHECK(kb_rng_u64(&a) == kb_rng_u64(&b));
    }
    double sum = 0, sum2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = kb_rng_normal(&a);
        sum += x;
        sum2 += x * x;
    }
    CHECK_NEAR(sum / 100000, 0.0, 0, 0.02);
    CHECK_NEAR(sum2 / 100000, 1.0, 0, 0.02);
    size_t counts[7] = {0};
    for (int i = 0; i < 70000; i++) {
        counts[kb_rng_below(&a, 7)]++;
    }
    for (int i = 0; i < 7; i++) {
        CHECK_NEAR((double)counts[i], 10000.0, 0.05, 0);
    }
}

static void test_sha256_matches_fips_vectors(void)
{
    unsigned char d[32];
    char hex[65];
    kb_sha256_digest("abc", 3, d);
    kb_sha256_hex(hex, d, 32);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    kb_sha256_digest("", 0, d);
    kb_sha256_hex(hex, d, 32);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    kb_sha256 ctx;
    kb_sha256_init(&ctx);
    for (size_t i = 0; m[i]; i++) {
        kb_sha256_update(&ctx, m + i, 1); /* byte at a time exercises the block buffer */
    }
    kb_sha256_final(&ctx, d);
    kb_sha256_hex(hex, d, 32);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

int main(void)
{
    test_error_set_formats_and_prefix_keeps_message();
    test_alloc_hook_fails_the_nth_allocation();
    test_varints_round_trip_at_the_edges();
    test_truncated_varint_is_flagged();
    test_rng_is_deterministic_and_uniform_enough();
    test_sha256_matches_fips_vectors();
    return check_exit();
}
