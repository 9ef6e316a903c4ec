#!/usr/bin/python3
# supervisord itself, started by /usr/bin/supervisord (supervisord-once.sh
# in the recipe), which keeps a second one from racing the first.
import sys

from supervisor.supervisord import main

if __name__ == "__main__":
    sys.exit(main())
