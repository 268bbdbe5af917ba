"""PyInstaller's entry script: the frozen app starts exactly like `sd-desktop`."""

import sys

from sd_desktop.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
