/* The float32 half-layout rotation of a (1, 4096, 32, 128) prefill written in C with AVX-512, against a
 * memcpy per row: what the machine allows by plain stores and by streaming (non-temporal) stores.
 * Arrays on 2 MiB huge pages, as NumPy's large arrays are; times are the calling thread's CPU time.
 *
 *     gcc -O3 -march=native -o rotate_c scripts/rotate_c.c && ./rotate_c
 *
 * Prints, per round, the best of ten calls of each and the copy's time over the rotation's. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define TOKENS 4096
#define HEADS 32
#define DIM 128
#define N ((size_t)TOKENS * HEADS * DIM)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void copy_rows(const float *x, float *o) {
    for (size_t r = 0; r < N / DIM; r++) memcpy(o + r * DIM, x + r * DIM, DIM * sizeof(float));
}

static void rotate(const float *x, float *o, const float *c, const float *s, int streaming) {
    for (size_t t = 0; t < TOKENS; t++) {
        const float *ct = c + t * DIM / 2, *st = s + t * DIM / 2;
        for (size_t h = 0; h < HEADS; h++) {
            const float *xr = x + (t * HEADS + h) * DIM;
            float *orow = o + (t * HEADS + h) * DIM;
            for (int i = 0; i < DIM / 2; i += 16) {
                __m512 cv = _mm512_loadu_ps(ct + i), sv = _mm512_loadu_ps(st + i);
                __m512 a = _mm512_loadu_ps(xr + i), b = _mm512_loadu_ps(xr + i + DIM / 2);
                __m512 lo = _mm512_sub_ps(_mm512_mul_ps(a, cv), _mm512_mul_ps(b, sv));
                __m512 hi = _mm512_add_ps(_mm512_mul_ps(b, cv), _mm512_mul_ps(a, sv));
                if (streaming) {
                    _mm512_stream_ps(orow + i, lo);
                    _mm512_stream_ps(orow + i + DIM / 2, hi);
                } else {
                    _mm512_storeu_ps(orow + i, lo);
                    _mm512_storeu_ps(orow + i + DIM / 2, hi);
                }
            }
        }
    }
    _mm_sfence();
}

int main(void) {
    size_t bytes = N * sizeof(float), huge = 2u << 20;
    float *x = aligned_alloc(huge, bytes), *o = aligned_alloc(huge, bytes);
    float *c = aligned_alloc(64, TOKENS * DIM / 2 * sizeof(float)), *s = aligned_alloc(64, TOKENS * DIM / 2 * sizeof(float));
    madvise(x, bytes, MADV_HUGEPAGE);
    madvise(o, bytes, MADV_HUGEPAGE);
    for (size_t i = 0; i < N; i++) x[i] = i * 1e-6f, o[i] = 0;
    for (size_t i = 0; i < TOKENS * DIM / 2; i++) c[i] = 0.5f, s[i] = 0.25f;
    for (int round = 0; round < 5; round++) {
        double best[3] = {1e9, 1e9, 1e9};
        for (int k = 0; k < 10; k++) {
            double t0 = now();
            copy_rows(x, o);
            double t1 = now();
            rotate(x, o, c, s, 0);
            double t2 = now();
            rotate(x, o, c, s, 1);
            double t3 = now();
            if (t1 - t0 < best[0]) best[0] = t1 - t0;
            if (t2 - t1 < best[1]) best[1] = t2 - t1;
            if (t3 - t2 < best[2]) best[2] = t3 - t2;
        }
        printf("memcpy per row %.2f ms, rotation by plain stores %.2f ms (%.3f), by streaming stores %.2f ms (%.3f)\n",
               best[0] * 1e3, best[1] * 1e3, best[0] / best[1], best[2] * 1e3, best[0] / best[2]);
    }
    return 0;
}
