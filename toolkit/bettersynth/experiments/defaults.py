"""Defaults shared by the commands and the statistics, importable without numpy or matplotlib
(``bsynth --help`` and ``bsynth runs record`` after every step of the main job stay fast).

    from bettersynth.experiments.defaults import BOOTSTRAP_SEED, DRAWS, GROUP_BY, LEVEL
"""

DRAWS = 2000          # bootstrap draws
BOOTSTRAP_SEED = 0    # seed of the bootstrap's numpy Generator
LEVEL = 0.95          # coverage of the percentile intervals
GROUP_BY = ("settings", "recipe")  # bsynth report --group-by (bettersynth.experiments.groups)
