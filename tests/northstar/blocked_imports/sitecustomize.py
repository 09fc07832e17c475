"""Put this folder on PYTHONPATH with NORTHSTAR_TEST_BLOCKED_IMPORTS=psycopg,pyspark to run a
process as if those packages were not installed (the shared environment keeps them)."""

import os
import sys
from importlib.abc import MetaPathFinder

BLOCKED = tuple(m for m in os.environ.get("NORTHSTAR_TEST_BLOCKED_IMPORTS", "").split(",") if m)


class _Blocked(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if any(fullname == m or fullname.startswith(m + ".") for m in BLOCKED):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


if BLOCKED:
    sys.meta_path.insert(0, _Blocked())
