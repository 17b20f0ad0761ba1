"""Ralph's LRS API server for the xAPI connector's tests: a real LRS.

Usage: python ralph_lrs.py HOST PORT (with RALPH_* in the environment, see
tests/support/lrs.rs). One process (no reloader), so the test stops it by
its pid. Ralph 5.1.0's file-system backend writes each POST of statements
in "create" mode, which refuses a second write to its one file (every POST
after the first answers 500); this sets its default to "append", the mode
the file backend documents for adding records. Nothing else is changed.
"""
import sys

from ralph.backends.data.base import BaseOperationType
from ralph.backends.data.fs import FSDataBackend

FSDataBackend.default_operation_type = BaseOperationType.APPEND

import uvicorn  # noqa: E402

uvicorn.run("ralph.api:app", host=sys.argv[1], port=int(sys.argv[2]), log_level="warning")
