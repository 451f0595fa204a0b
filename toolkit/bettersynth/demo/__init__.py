"""The embedded demo: tiny random models and small synthetic data sets in the real assets' layout.

Built offline and deterministically by `bsynth demo build` (`bettersynth.demo.build.build_demo`),
so the whole pipeline (recipes, both training stages, eval) runs on a CPU in minutes through the
same loading code as the real assets. Scores on it are meaningless; the files and code paths are real.
"""
