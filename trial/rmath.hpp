#pragma once
// R's own numerical routines, from R 4.2.2's standalone math library (Debian r-mathlib,
// libRmath), so that the trial statistics use the very code R's stats::wilcox.test runs:
// the same normal quantile to the last bit, the same exact Wilcoxon distribution, the same
// signif(). Plus R's mean(), median() and type-7 quantile(), which live in R itself and are
// reproduced here operation for operation (long double accumulation, overflow fallback).
#include <vector>

namespace lungvol::trial::rmath {

double qnorm(double p, bool lower_tail);  // R: qnorm(p, 0, 1, lower.tail)
double pnorm(double x, bool lower_tail);  // R: pnorm(x, 0, 1, lower.tail)
// R: pwilcox(q, m, n, lower.tail), qwilcox(p, m, n, lower.tail). Serialised: libRmath keeps
// the counting table in static memory.
double pwilcox(double q, double m, double n, bool lower_tail);
double qwilcox(double p, double m, double n, bool lower_tail);
double pbinom(double x, double n, double p, bool lower_tail);  // R: pbinom(...)
double signif(double x, int digits);                          // R: signif(x, digits)

// R's mean(x) for doubles (summary.c): long double sum, divided by n (or, when the sum
// overflows a double, the sum of x[i] / n), then one correction pass. Finite for finite
// input: the mean of 1e308 and 1.5e308 is 1.25e308.
double mean(const std::vector<double>& x);
// R's median(x) (median.default): the middle value, or mean() of the two middle values.
double median_sorted(const std::vector<double>& sorted);
// R's quantile(x, p, type = 7) of sorted values: index = 1 + (n - 1) p, lo = floor(index),
// h = index - lo; x[lo] when h = 0 or x[hi] == x[lo], else (1 - h) x[lo] + h x[hi].
double quantile7_sorted(const std::vector<double>& sorted, double p);

}  // namespace lungvol::trial::rmath
