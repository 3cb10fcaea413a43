// Vectorised scans over one row of logits for the searches: maximum, log-sum-exp, first element above a bound.
// Compiled for AVX-512, AVX2 and baseline x86-64 and picked at run time (the build sets no -march).
#pragma once

namespace tolk::row_ops {

// What the searches need of a row before choosing from it, read from memory once (block by block, each block
// scanned twice while it sits in L1).
struct RowStats {
    float max;      // the largest element (-inf for an empty row)
    int argmax;     // the first index holding it (n when there is none: empty, all -inf or NaN)
    float lse;      // log(sum(exp(x[i]))), computed around the maximum, accumulated in double; -inf when max is
};
RowStats row_stats(const float* x, int n);

float max_value(const float* x, int n);  // -inf for n == 0
// log(sum(exp(x[i]))) computed around `max` (= max_value(x, n)), accumulated in double; -inf when max is -inf.
float log_sum_exp(const float* x, int n, float max);
// The first index i in [from, n) with x[i] > bound, or n when there is none.
int first_above(const float* x, int from, int n, float bound);
// The first index i in [0, n) with x[i] == value, or n.
int first_equal(const float* x, int n, float value);

}  // namespace tolk::row_ops
