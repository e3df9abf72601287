"""The product as a user installs it: the virtual environment's ``blsnode`` entry point.

Tests that start the node or a worker run this console script from a folder outside the
repository, with no ``PYTHONPATH``, so they see exactly what ``make run`` gives a user.
``tests/`` is on ``sys.path`` (its conftest), so import it as ``from installed import ...``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The console script pip wrote beside the interpreter that runs the tests.
BLSNODE = Path(sys.executable).with_name("blsnode")
SETTINGS_PREFIX = "BLSNODE_"
KEPT_VARIABLES = ("BLSNODE_SHARED_DATA",)


def blsnode_command(*args: str | Path) -> list[str]:
    """The installed ``blsnode`` with ``args``; a clear error if it is not installed."""
    if not BLSNODE.is_file():
        raise RuntimeError(
            f"{BLSNODE} is missing: install the product into this environment first "
            "(make install-dev)"
        )
    return [str(BLSNODE), *map(str, args)]


def user_environment(**extra: str) -> dict[str, str]:
    """The test's environment as a user's shell would have it: no ``PYTHONPATH``.

    ``BLSNODE_*`` variables are left out (the settings file is the whole configuration),
    except the location of the shared data.
    """
    environment = {
        name: value
        for name, value in os.environ.items()
        if name != "PYTHONPATH" and (not name.startswith(SETTINGS_PREFIX) or name in KEPT_VARIABLES)
    }
    return environment | extra
