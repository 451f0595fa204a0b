"""Guard against Data-Juicer installing packages while a recipe runs.

Data-Juicer's LazyLoader installs a missing operator dependency at run time with ``uv pip install``
(falling back to pip), outside any pinned set. Everything our recipes need is installed up front,
so an attempt means a recipe uses something not pinned. Three layers:

1. ``no_install_environment``: the Data-Juicer process gets pip and uv configured to reach no
   index and no cache, so an attempt fails instead of pulling packages;
2. ``install_attempts``: Data-Juicer's own log lines ("Package [x] not found, installing...")
   name the package it tried;
3. ``installed_distributions`` before and after: any distribution added or changed fails the run.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Mapping

INSTALL_LINE = re.compile(r"Package \[(?P<package>[^\]]+)\] not found, installing")


def no_install_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without its pip/uv settings (indexes, wheel folders) and with settings under which
    ``uv pip install`` and ``pip install`` find nothing to install: no index, no cache, no config file."""
    kept = {key: value for key, value in environ.items() if not key.startswith(("PIP_", "UV_"))}
    return dict(kept, UV_OFFLINE="1", UV_NO_CACHE="1", UV_NO_INDEX="1", UV_NO_CONFIG="1",
                PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1", PIP_CONFIG_FILE=os.devnull)


def installed_distributions() -> dict[str, str]:
    """{normalised distribution name: version} of everything importable in this Python."""
    found = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found[re.sub(r"[-_.]+", "-", name).lower()] = distribution.version
    return found


def distribution_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """One line per distribution added, removed or changed between two snapshots."""
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            changes.append(f"installed {name}=={after[name]}")
        elif name not in after:
            changes.append(f"removed {name}=={before[name]}")
        elif before[name] != after[name]:
            changes.append(f"changed {name} {before[name]} -> {after[name]}")
    return changes


def install_attempts(log_text: str) -> list[str]:
    """Packages Data-Juicer said it was installing, in order, without repeats."""
    return list(dict.fromkeys(match.group("package") for match in INSTALL_LINE.finditer(log_text)))
