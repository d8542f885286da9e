"""`python -m vader_hub.train ...` (also under torchrun): the same parser as `vader-hub train`."""

import sys

from ..cli.train import main

if __name__ == "__main__":
    sys.exit(main())
