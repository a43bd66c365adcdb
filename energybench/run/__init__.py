"""Running compression benchmarks as experiments: config, cells, interleaved trials, suites, devices, A/B.

``runner`` holds the order of a run: ``config`` what it is asked, ``prepare`` the grid of cells, ``trials`` the
measured windows, ``state`` the growing record and its file; ``ab`` runs two code versions turn by turn."""
