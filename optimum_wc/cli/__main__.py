"""``python -m optimum_wc.cli``: the ``optimum-wc`` command."""

import sys

from optimum_wc.cli import main

sys.exit(main())
