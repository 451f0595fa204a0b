"""bettersynth.data."""
