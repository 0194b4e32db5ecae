import sys

from perpd.cli import main

sys.exit(main())
