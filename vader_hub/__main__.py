"""``python -m vader_hub`` is the ``vader-hub`` command."""
import sys

from .cli import main

sys.exit(main())
