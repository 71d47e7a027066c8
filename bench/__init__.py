"""Benchmark scripts (`python bench/<name>.py`); their committed results are in benchmarks/."""
