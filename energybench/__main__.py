"""``python -m energybench`` is the same as the ``energybench`` command."""

import sys

from energybench.cli import main

sys.exit(main())
