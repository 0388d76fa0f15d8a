/* The float32 rotations with a float32 table, half and interleaved layouts, in C with AVX-512, as
 * scripts/rotate_c16.py loads them beside the 2-byte ones: what the machine allows numrope's float32
 * kernels on one thread. x and o are (tokens, heads, head_dim), c and s (tokens, head_dim / 2);
 * head_dim a multiple of 32. Products and sums are rounded separately, as numrope's kernels compute
 * them (compile with -ffp-contract=off). */
#include <immintrin.h>

void rotate32(const float *x, float *o, const float *c, const float *s, long tokens, long heads, long head_dim,
              int interleaved) {
    /* the interleaved layout: evens and odds of two vectors of features apart, and back together */
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    long half = head_dim / 2;
    for (long t = 0; t < tokens; t++) {
        const float *ct = c + t * half, *st = s + t * half;
        for (long h = 0; h < heads; h++) {
            const float *xr = x + (t * heads + h) * head_dim;
            float *orow = o + (t * heads + h) * head_dim;
            for (long i = 0; i < half; i += 16) {
                __m512 cv = _mm512_loadu_ps(ct + i), sv = _mm512_loadu_ps(st + i);
                __m512 x0, x1, a, b;
                if (interleaved) {
                    a = _mm512_loadu_ps(xr + 2 * i), b = _mm512_loadu_ps(xr + 2 * i + 16);
                    x0 = _mm512_permutex2var_ps(a, evens, b), x1 = _mm512_permutex2var_ps(a, odds, b);
                } else {
                    x0 = _mm512_loadu_ps(xr + i), x1 = _mm512_loadu_ps(xr + i + half);
                }
                __m512 lo = _mm512_sub_ps(_mm512_mul_ps(x0, cv), _mm512_mul_ps(x1, sv));
                __m512 hi = _mm512_add_ps(_mm512_mul_ps(x1, cv), _mm512_mul_ps(x0, sv));
                if (interleaved) {
                    _mm512_storeu_ps(orow + 2 * i, _mm512_permutex2var_ps(lo, first, hi));
                    _mm512_storeu_ps(orow + 2 * i + 16, _mm512_permutex2var_ps(lo, second, hi));
                } else {
                    _mm512_storeu_ps(orow + i, lo);
                    _mm512_storeu_ps(orow + i + half, hi);
                }
            }
        }
    }
}
