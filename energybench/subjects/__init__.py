"""Benchmark subjects (models + workloads + quality) and the compression methods applied to them."""
