"""`python -m videoaccel.cli ...` is the `videoaccel` command (as is `python -m videoaccel`)."""
import sys

from . import main

sys.exit(main())
