"""bettersynth.recipes."""
