"""bettersynth.eval."""
