"""Defaults shared by the commands and the statistics, importable without numpy or matplotlib
(``bsynth --help`` and ``bsynth runs record`` after every step of the main job stay fast).

    from bettersynth.experiments.defaults import BOOTSTRAP_SEED, DRAWS, GROUP_BY, LEVEL, MAX_DRAWS
"""

DRAWS = 2000          # bootstrap draws
MAX_DRAWS = 100_000  # more would hold GBs of question indices (draws x questions) and take hours
BOOTSTRAP_SEED = 0    # seed of the bootstrap's numpy Generator
LEVEL = 0.95          # coverage of the percentile intervals
GROUP_BY = ("settings", "recipe")  # bsynth report --group-by (bettersynth.experiments.groups)
