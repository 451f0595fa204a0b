"""``python -m bettersynth.train [official flags]``: one training stage (same as ``bsynth train``).

Works under ``torchrun --nproc_per_node N -m bettersynth.train ...`` and
``deepspeed --module bettersynth.train --deepspeed toolkit/configs/deepspeed/zero2.json ...``.
"""

import sys

from bettersynth.train.args import parse_args
from bettersynth.train.run import run

sys.exit(run(parse_args()))
