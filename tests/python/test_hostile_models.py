#!/usr/bin/env python3
"""ctest hook for tests/hostile/make_hostile.py: every hostile model directory built from the fixtures must make the
tolk binary of this build exit 2 with one stderr line naming the file at fault.

The binary: $TOLK_BINARY, else ./tolk in the current directory (ctest runs tests in the build directory).
Each rejection may take $TOLK_HOSTILE_TIME_LIMIT seconds (default 5: sanitizer builds on a loaded machine; the
script's own default, 1 s, is the target for an ASan build on an idle one).

    /usr/bin/python3 tests/python/test_hostile_models.py
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    tolk = os.environ.get("TOLK_BINARY") or str(Path.cwd() / "tolk")
    if not Path(tolk).is_file():
        print(f"test_hostile_models: no tolk binary at {tolk} (set TOLK_BINARY)", file=sys.stderr)
        return 1
    limit = os.environ.get("TOLK_HOSTILE_TIME_LIMIT", "5")
    return subprocess.run([sys.executable, str(REPO / "tests" / "hostile" / "make_hostile.py"), "--tolk", tolk,
                           "--time-limit", limit]).returncode


if __name__ == "__main__":
    sys.exit(main())
