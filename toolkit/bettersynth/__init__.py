"""bettersynth: the Better Synth challenge toolkit (Data-Juicer recipes -> MGM-2B -> eval -> submission).

The command-line entry point is ``bsynth`` (see ``bettersynth.cli``); ``bsynth --help`` lists the
subcommands.
"""

__version__ = "0.1.0"
