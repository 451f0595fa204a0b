"""bettersynth.train."""
