"""The names in a training stage's folder, in one place and without torch (the checkpoint code,
the run records of bettersynth.experiments and ``bsynth pack``'s checks read them).

    OUTPUT_DIR/checkpoint-<step>/checkpoint_complete.json   a complete checkpoint (written last)
    OUTPUT_DIR/trainer_state.json                           the finished stage's trainer state
    OUTPUT_DIR/training_complete.json                       the stage is done (written last of all)
"""

from __future__ import annotations

import re

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
CHECKPOINT_MARKER = "checkpoint_complete.json"
FINAL_MARKER = "training_complete.json"
STATE_FILE = "trainer_state.json"
