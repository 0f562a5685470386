# Reference values for lungvol's trial statistics, computed by R itself (R 4.2.2,
# stats::wilcox.test, median, quantile, pbinom). The C++ tests (tests/unit/trial/
# stats_r_test.cpp, endpoint_r_test.cpp) read the JSON this writes; R is not needed to run them.
#
# Regenerate (Debian: apt-get install r-base-core):
#   Rscript tests/unit/trial/r_reference/make_reference.R > tests/unit/trial/r_reference/r_cases.json
#
# Every number is printed with 17 significant digits (round-trip exact). Non-finite numbers
# are written as the strings "Inf", "-Inf", "NaN"; R's NA as null.
options(warn = 1)

num <- function(v) {
  if (length(v) == 0) return("[]")
  s <- vapply(v, function(a) {
    if (is.na(a) && !is.nan(a)) "null"
    else if (is.nan(a)) "\"NaN\""
    else if (is.infinite(a)) if (a > 0) "\"Inf\"" else "\"-Inf\""
    else sprintf("%.17g", a)
  }, "")
  if (length(v) == 1) s else paste0("[", paste(s, collapse = ", "), "]")
}
vec <- function(v) if (length(v) == 1) paste0("[", num(v), "]") else num(v)
str <- function(s) paste0("\"", gsub("\n", "\\\\n", gsub("\"", "\\\\\"", s)), "\"")
strs <- function(v) paste0("[", paste(vapply(v, str, ""), collapse = ", "), "]")
obj <- function(...) {
  kv <- list(...)
  kv <- kv[!vapply(kv, is.null, TRUE)]
  paste0("{", paste(paste0(str(names(kv)), ": ", unlist(kv)), collapse = ", "), "}")
}
bool <- function(b) if (isTRUE(b)) "true" else "false"

# wilcox.test.default with uniroot's maxiter set (R's own code, one argument added), to
# record what R returns when the root finder stops before converging.
wilcox_maxit <- function(maxit) {
  src <- deparse(stats:::wilcox.test.default)
  src <- gsub("tol = tol.root", paste0("tol = tol.root, maxiter = ", maxit), src, fixed = TRUE)
  f <- eval(parse(text = src))
  environment(f) <- asNamespace("stats")
  f
}

run_wilcox <- function(name, x, y, exact = NULL, digits = Inf, maxit = NULL) {
  warns <- character()
  f <- if (is.null(maxit)) stats:::wilcox.test.default else wilcox_maxit(maxit)
  r <- tryCatch(withCallingHandlers(
    f(x, y, conf.int = TRUE, exact = exact, digits.rank = digits),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") }),
    error = function(e) e)
  base <- list(name = str(name), x = vec(x), y = vec(y),
               exact = if (is.null(exact)) "null" else bool(exact),
               digits_rank = if (is.finite(digits)) num(digits) else "0",
               max_iter = if (is.null(maxit)) "1000" else num(maxit))
  if (inherits(r, "error")) {
    # R stops while forming the interval; W and p are what wilcox.test gives without it.
    t <- suppressWarnings(f(x, y, exact = exact, digits.rank = digits))
    return(do.call(obj, c(base, list(W = num(unname(t$statistic)), p = num(t$p.value),
                                     error = str(conditionMessage(r)), warnings = strs(warns)))))
  }
  do.call(obj, c(base, list(
    W = num(unname(r$statistic)), p = num(r$p.value), estimate = num(unname(r$estimate)),
    ci = num(as.numeric(r$conf.int)), conf_level = num(attr(r$conf.int, "conf.level")),
    method = str(r$method), warnings = strs(warns))))
}

summary_case <- function(name, v) {
  s <- sort(v)
  n <- length(s)
  k <- 0
  while (k + 1 <= (n + 1) %/% 2 && 1 - 2 * pbinom(k, n, 0.5) >= 0.95) k <- k + 1
  ci <- if (k == 0) c(NA, NA) else c(s[k], s[n + 1 - k])
  cov <- if (k == 0) NA else 1 - 2 * pbinom(k - 1, n, 0.5)
  q <- quantile(v, c(0.25, 0.75), names = FALSE)
  obj(name = str(name), values = vec(v), median = num(median(v)), q1 = num(q[1]), q3 = num(q[2]),
      median_ci = num(ci), coverage = num(cov))
}

set.seed(20221110)
rel <- function(b, v) (v - b) / b * 100  # lungvol's relative change
# Tie-heavy changes as a trial produces them: proportions on a coarse grid, LOCF (change 0),
# resolution (-100).
coarse_changes <- function(n, shift) {
  b <- sample(c(2, 4, 5, 8, 10, 16, 20, 25, 40), n, replace = TRUE)
  v <- pmax(0, b + sample(c(-8, -5, -4, -2, -1, 0, 0, 1, 2, 4) + shift, n, replace = TRUE))
  round(rel(b, v), 6)
}
# The same with proportions that are not binary fractions: changes equal in exact arithmetic
# (e.g. every -33.3 %) carry different rounding noise, so the two tie conventions differ.
noisy_changes <- function(n, shift) {
  b <- sample(c(0.15, 0.2, 0.3, 0.6, 0.9, 1.5, 2.1), n, replace = TRUE)
  v <- b * sample(c(0, 0.5, 2 / 3, 1, 1, 4 / 3, 1.5, 2) * (1 + shift), n, replace = TRUE)
  rel(b, v)
}
# Changes that are equal in exact arithmetic but differ in the last bits.
noisy <- c(rel(0.3, 0.2), rel(0.9, 0.6), rel(0.15, 0.1), rel(0.6, 0.4), rel(3, 2), rel(0.03, 0.02))

wcases <- list()
add <- function(...) wcases[[length(wcases) + 1]] <<- run_wilcox(...)

# Tiny arms: the exact interval cannot reach 95 %; R reports the level reached.
tiny <- list(c(1, 1), c(1, 2), c(2, 2), c(2, 3), c(1, 5), c(3, 3), c(3, 4), c(4, 4), c(5, 5), c(2, 9))
for (s in tiny) {
  x <- round(rnorm(s[1], -20, 30), 2); y <- round(rnorm(s[2], 0, 30), 2)
  add(sprintf("tiny_%d_%d", s[1], s[2]), x, y)
}
add("tiny_2_2_hand", c(1, 2), c(3, 4))
# Exact branch, no ties, moderate sizes.
for (s in list(c(8, 5), c(12, 15), c(30, 25), c(49, 49))) {
  add(sprintf("exact_%d_%d", s[1], s[2]), round(rnorm(s[1], -25, 35), 3), round(rnorm(s[2], -10, 35), 3))
}
# Tie-heavy: the normal branch with many tie groups, both conventions, auto and forced normal.
for (s in list(c(3, 4), c(5, 6), c(10, 10), c(20, 12), c(30, 35), c(65, 35), c(100, 100))) {
  x <- coarse_changes(s[1], -1); y <- coarse_changes(s[2], 0)
  for (d in c(Inf, 10)) {
    add(sprintf("ties_%d_%d_d%s", s[1], s[2], d), x, y, digits = d)
    add(sprintf("ties_%d_%d_d%s_normal", s[1], s[2], d), x, y, exact = FALSE, digits = d)
  }
}
for (s in list(c(6, 7), c(15, 12), c(40, 45), c(60, 70))) {
  x <- noisy_changes(s[1], -0.1); y <- noisy_changes(s[2], 0)
  for (d in c(Inf, 10)) add(sprintf("ties_noisy_%d_%d_d%s", s[1], s[2], d), x, y, digits = d)
}
# Floating-point noise: tied at 10 significant digits, distinct without rounding.
for (k in 1:3) {
  x <- c(sample(noisy, 4), round(rnorm(5 + k, -30, 20), 2))
  y <- c(sample(noisy, 3), round(rnorm(4 + k, -20, 20), 2))
  for (d in c(Inf, 10)) add(sprintf("noise_%d_d%s", k, d), x, y, digits = d)
}
# Outliers spanning many orders of magnitude (tiny baselines give huge relative changes).
for (k in 1:4) {
  x <- c(round(rnorm(9, -20, 25), 2), -runif(1) * 10^(6 + 2 * k))
  y <- c(round(rnorm(7, -5, 25), 2), runif(1) * 10^(5 + 2 * k))
  for (d in c(Inf, 10)) add(sprintf("outliers_%d_d%s", k, d), x, y, exact = FALSE, digits = d)
}
# All values of each group equal: R computes W and p, then stops forming the interval.
add("constant_groups", c(1, 1), c(2, 2, 2))
# The root finder stopped early: R's uniroot warns "_NOT_ converged" and returns its last step.
xn <- coarse_changes(20, -1); yn <- coarse_changes(15, 0)
for (m in c(1, 3, 6)) add(sprintf("not_converged_maxit%d", m), xn, yn, exact = FALSE, maxit = m)

scases <- list(
  summary_case("odd_9", round(rnorm(9, 0, 10), 3)),
  summary_case("even_6", c(4, 1, 3, 2, 6, 5)),
  summary_case("even_20", round(rnorm(20, 0, 10), 2)),
  summary_case("n5_no_ci", c(5, 1, 3, 2, 4)),
  summary_case("two_huge", c(1e308, 1.5e308)),
  summary_case("huge_mixed", c(-1e308, 1e308, 1.7e308)),
  summary_case("huge_even", c(1.7e308, 1.6e308, -1.7e308, 1.75e308)),
  summary_case("subnormal", c(1e-310, 3e-310, -2e-310, 5e-310)),
  summary_case("ties_n11", c(0, 0, 0, -100, -100, 12.5, 12.5, 25, -50, 0, 3))
)

# Visit tables run through `lungvol endpoint`: R reads the same CSV text, computes the day-28
# changes ((value - baseline) / baseline * 100, or value - baseline) and compares the arms, for
# both tie conventions. Changes that are not finite are left out, as lungvol does.
endpoint_case <- function(name, csv, column, relative = TRUE) {
  tab <- read.csv(text = csv)
  b <- tab[tab$visit == "baseline", c("subject_id", "arm", column)]
  v <- tab[tab$visit == "day28", c("subject_id", column)]
  m <- merge(b, v, by = "subject_id", suffixes = c("_b", "_v"))
  vb <- m[[paste0(column, "_b")]]; vv <- m[[paste0(column, "_v")]]
  ch <- if (relative) (vv - vb) / vb * 100 else vv - vb
  excluded <- m$subject_id[!is.finite(ch)]
  x <- ch[m$arm == "MSC" & is.finite(ch)]; y <- ch[m$arm == "Placebo" & is.finite(ch)]
  per_digits <- function(d) {
    r <- suppressWarnings(wilcox.test(x, y, conf.int = TRUE, digits.rank = d))
    obj(digits_rank = if (is.finite(d)) num(d) else "0", W = num(unname(r$statistic)), p = num(r$p.value),
        estimate = num(unname(r$estimate)), ci = num(as.numeric(r$conf.int)),
        conf_level = num(attr(r$conf.int, "conf.level")), method = str(r$method))
  }
  qa <- quantile(x, c(0.25, 0.75), names = FALSE); qb <- quantile(y, c(0.25, 0.75), names = FALSE)
  obj(name = str(name), csv = str(csv), column = str(column),
      excluded = strs(excluded), n_a = num(length(x)), n_b = num(length(y)),
      median_a = num(median(x)), median_b = num(median(y)), q1_a = num(qa[1]), q3_a = num(qa[2]),
      q1_b = num(qb[1]), q3_b = num(qb[2]),
      tests = paste0("[", per_digits(10), ", ", per_digits(Inf), "]"))
}
visit_csv <- function(ids, arms, columns) {
  rows <- "subject_id,arm,visit"
  for (cn in names(columns)) rows[1] <- paste0(rows[1], ",", cn)
  for (i in seq_along(ids)) for (k in 1:2) {
    vals <- vapply(columns, function(cv) cv[[2 * (i - 1) + k]], "")
    rows <- c(rows, paste(c(ids[i], arms[i], c("baseline", "day28")[k], vals), collapse = ","))
  }
  paste0(paste(rows, collapse = "\n"), "\n")
}
f17 <- function(v) sprintf("%.17g", v)
ecases <- list()
{
  # Proportions that are not binary fractions (ties only up to rounding noise), and subject S3
  # with a subnormal baseline written "1e-310": a number, whose change overflows to Inf.
  base <- c(0.3, 0.9, 1e-310, 0.15, 0.6, 2.1, 0.3, 0.9, 0.3, 0.6, 0.15, 1.5, 0.2, 0.45)
  d28 <- base * c(2/3, 2/3, 1, 2/3, 0.5, 4/3, 0.5, 2/3, 1, 4/3, 2/3, 1.5, 1, 2/3)
  cells <- as.vector(rbind(f17(base), f17(d28)))
  cells[5] <- "1e-310"; cells[6] <- "5"
  csv <- visit_csv(c(paste0("S", 1:7), paste0("P", 1:7)), rep(c("MSC", "Placebo"), each = 7),
                   list(lesion_pct = as.list(cells)))
  ecases[[1]] <- endpoint_case("subnormal_baseline_noisy_ties", csv, "lesion_pct")
}
{
  # Two changes near the top of the double range: their median is finite in R.
  csv <- visit_csv(c("S1", "S2", "P1", "P2", "P3"), c("MSC", "MSC", "Placebo", "Placebo", "Placebo"),
                   list(lesion_pct = as.list(rep(c("10", "5"), 5)),
                        mass_g = as.list(c("0", "1e308", "0", "1.5e308", "1", "2", "1", "3", "1", "4"))))
  ecases[[2]] <- endpoint_case("two_huge_changes", csv, "mass_g", relative = FALSE)
}

cat("{\n", str("generator"), ": ", str(paste(R.version.string, "- tests/unit/trial/r_reference/make_reference.R")), ",\n",
    str("wilcoxon"), ": [\n  ", paste(unlist(wcases), collapse = ",\n  "), "\n],\n",
    str("summaries"), ": [\n  ", paste(unlist(scases), collapse = ",\n  "), "\n],\n",
    str("endpoint"), ": [\n  ", paste(unlist(ecases), collapse = ",\n  "), "\n]\n}\n", sep = "")
