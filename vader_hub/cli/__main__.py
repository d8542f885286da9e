"""``python -m vader_hub.cli``: the ``vader-hub`` command."""
import sys

from . import main

sys.exit(main())
