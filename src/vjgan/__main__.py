import sys

from vjgan.cli import main

sys.exit(main())
