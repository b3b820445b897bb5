/* In-place unnormalized Walsh-Hadamard transform in Sylvester order (halves a, b ->
 * a + b, a - b), float32. Kernels differ only in speed: every kernel and every thread
 * count gives the same bits (the butterflies are the same operations in the same order
 * per element). Kernel files never allocate. */
#ifndef INTDIM_FWHT_H
#define INTDIM_FWHT_H

#include "internal.h"

/* Is kernel (INTDIM_KERNEL_PORTABLE/AVX2/AVX512) compiled in and supported by this CPU? */
int intdim__fwht_kernel_available(int kernel);
/* Tests only: pretend the CPU lacks the kernels in mask (bit k: kernel k; 0: none hidden). */
void intdim__fwht_hide_kernels(unsigned mask);
/* The fastest available kernel (what INTDIM_KERNEL_AUTO resolves to). */
int intdim__fwht_best_kernel(void);
/* x has 2^log2n floats, 64-byte aligned. kernel must be available. threads >= 1. */
void intdim__fwht(float *x, unsigned log2n, int kernel, int threads);

#endif
