"""pytest plugin entry point (filled in by the results/gates work)."""
