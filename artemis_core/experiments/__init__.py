"""Experiments: comparisons of strategies, the result store, reports, Pareto fronts and
plots."""
