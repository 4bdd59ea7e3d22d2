"""`python -m videoaccel ...` (what torchrun launches) is the `videoaccel` command."""
import sys

from .cli import main

sys.exit(main())
