/* The tests' own definition of the Walsh-Hadamard transform: the textbook loops in double,
 * Sylvester order (halves a, b -> a + b, a - b), against which the library is checked. */
#ifndef INTDIM_TESTS_REF_WHT_H
#define INTDIM_TESTS_REF_WHT_H

#include <stddef.h>

static inline void ref_wht_double(double *v, size_t n)
{
    for (size_t h = 1; h < n; h *= 2)
        for (size_t i = 0; i < n; i += 2 * h)
            for (size_t j = i; j < i + h; j++) {
                double a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
}

#endif
