/* The float16 and bfloat16 half-layout rotations with a float32 table, in C with AVX-512, as
 * scripts/rotate_c16.py loads them: what the machine allows the 2-byte kernels on one thread.
 * x and o are (tokens, heads, head_dim) bit patterns, c and s (tokens, head_dim / 2) float32;
 * head_dim a multiple of 32. Products and sums are rounded separately, as numrope's kernels
 * compute them (compile with -ffp-contract=off). */
#include <immintrin.h>
#include <stdint.h>

static inline __m512 widen(const uint16_t *p, int bf16) {
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    if (bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
    return _mm512_cvtph_ps(v);  /* F16C */
}

/* float32 -> bfloat16 bits, nearest even, NaN kept quiet: numrope's integer rounding */
static inline __m256i bf16_by_integers(__m512 f) {
    __m512i b = _mm512_castps_si512(f);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i nearest = _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7FFF)), odd);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_slli_epi32(b, 1), _mm512_set1_epi32((int)0xFF000000u));
    nearest = _mm512_mask_mov_epi32(nearest, nan, _mm512_or_si512(b, _mm512_set1_epi32(0x400000)));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(nearest, 16));
}

/* narrow: 0 float16 (F16C), 1 bfloat16 by integers, 2 bfloat16 by AVX512-BF16's vcvtneps2bf16, which
 * flushes subnormals to zero (so not numrope's rounding: shown for its speed only) */
static inline void narrow(uint16_t *p, __m512 f, int how, int streaming) {
    __m256i v = how == 0 ? _mm512_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT)
              : how == 1 ? bf16_by_integers(f)
                         : (__m256i)_mm512_cvtneps_pbh(f);
    if (streaming) _mm256_stream_si256((__m256i *)p, v);
    else _mm256_storeu_si256((__m256i *)p, v);
}

void rotate16(const uint16_t *x, uint16_t *o, const float *c, const float *s, long tokens, long heads,
              long head_dim, int how, int streaming) {
    long half = head_dim / 2;
    for (long t = 0; t < tokens; t++) {
        const float *ct = c + t * half, *st = s + t * half;
        for (long h = 0; h < heads; h++) {
            const uint16_t *xr = x + (t * heads + h) * head_dim;
            uint16_t *orow = o + (t * heads + h) * head_dim;
            for (long i = 0; i < half; i += 16) {
                __m512 cv = _mm512_loadu_ps(ct + i), sv = _mm512_loadu_ps(st + i);
                __m512 a = widen(xr + i, how != 0), b = widen(xr + i + half, how != 0);
                narrow(orow + i, _mm512_sub_ps(_mm512_mul_ps(a, cv), _mm512_mul_ps(b, sv)), how, streaming);
                narrow(orow + i + half, _mm512_add_ps(_mm512_mul_ps(b, cv), _mm512_mul_ps(a, sv)), how, streaming);
            }
        }
    }
    if (streaming) _mm_sfence();
}
