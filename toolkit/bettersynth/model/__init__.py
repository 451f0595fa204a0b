"""bettersynth.model."""
