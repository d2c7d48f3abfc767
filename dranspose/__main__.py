import sys

from dranspose.cli import main

sys.exit(main())
