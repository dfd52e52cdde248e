import sys

from remapdsl.cli import main

sys.exit(main())
