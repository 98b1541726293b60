"""``python -m hitl_langgraph.cli``."""

from __future__ import annotations

import sys

from .main import main

sys.exit(main())
