"""The images a recipe run draws (``synthetic_images/NAME/``): carried into a new attempt, pruned to the export.

Used by bettersynth.recipes.run, not run by hand. Drawn images are written once (to a temporary
name, then renamed) and never changed, so a new attempt can start from hard links to the images of
the committed export and of an unfinished attempt: the drawing operator finds them and draws only
the rest. Before a run is committed, the images its export does not point at are removed, so the
committed folder holds exactly the export's synthetic images.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bettersynth.data.image_roots import SYNTHETIC_FIELD


def link_files(source: Path, target: Path) -> int:
    """Hard-link every complete file under ``source`` to the same place under ``target`` (kept where
    there already); returns the number linked. Drawn images are written once and never changed."""
    count = 0
    for path in source.rglob("*") if source.is_dir() else ():
        destination = target / path.relative_to(source)
        if path.is_file() and not path.name.endswith(".partial") and not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, destination)
            count += 1
    return count


def keep_only(folder: Path, used: set[str], base: Path) -> None:
    """Remove the files under ``folder`` whose paths (relative to ``base``, the export's folder) are not
    in ``used``, and the emptied folders up to ``base``."""
    for path in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else ():
        if path.is_file() and path.relative_to(base).as_posix() not in used:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    while folder != base and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def synthetic_paths(export: Path) -> set[str]:
    """The image paths of the synthetic samples of ``export`` (relative to its folder)."""
    used: set[str] = set()
    with export.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if row.get(SYNTHETIC_FIELD):
                used.update(row["images"])
    return used
