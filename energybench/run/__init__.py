"""Running compression benchmarks as experiments: the config and state of a run, its interleaved trials,
the suites it reads, the devices it uses, and A/B sessions of two code versions."""
