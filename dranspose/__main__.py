import sys

from dranspose.cli.main import main

sys.exit(main())
