"""Scoring completions: the evaluation protocol, metrics, classical baselines, statistics, comparison reports, figures."""
