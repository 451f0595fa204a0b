"""Says whether the pinned dependency set of pyproject.toml is installed exactly (stdlib only).

install.sh runs it before touching pip, so a second install is a fast no-op:

    python toolkit/bettersynth/install_check.py [--dev]     # exit 0: all pins met; 1: something to do

It prints each unmet pin (missing, or another version installed) and whether the bettersynth
package is importable from this checkout.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*==\s*([^\s;]+)\s*$")


def no_deps_requirements(pyproject: dict) -> list[str]:
    """Pins installed with ``pip install --no-deps`` after the rest (their metadata conflicts with a pin)."""
    return list(pyproject.get("tool", {}).get("bettersynth", {}).get("no-deps", []))


def pinned_requirements(dev: bool) -> list[tuple[str, str]]:
    """(name, version) of every pin in pyproject.toml (dependencies, the --no-deps list of
    [tool.bettersynth], plus the dev extra)."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    specs = list(project["dependencies"]) + no_deps_requirements(pyproject)
    if dev:
        specs += project["optional-dependencies"]["dev"]
    pins = []
    for spec in specs:
        match = PIN.match(spec)
        if not match:
            raise SystemExit(f"pyproject.toml: dependency {spec!r} is not pinned as name==version")
        pins.append((match.group(1), match.group(3)))
    return pins


def unmet(pins: list[tuple[str, str]]) -> list[str]:
    problems = []
    for name, wanted in pins:
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}=={wanted}: not installed")
            continue
        # local build tags (torch 2.14.1+cu130) satisfy the pin 2.14.1
        if found.split("+")[0] != wanted:
            problems.append(f"{name}=={wanted}: {found} installed")
    spec = importlib.util.find_spec("bettersynth")
    expected = REPO_ROOT / "toolkit" / "bettersynth" / "__init__.py"
    if spec is None or spec.origin is None or Path(spec.origin).resolve() != expected:
        problems.append(f"bettersynth: not installed in editable mode from {REPO_ROOT}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also check the dev extra (tests, linters)")
    args = parser.parse_args()
    problems = unmet(pinned_requirements(args.dev))
    for line in problems:
        print(f"  to install: {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
