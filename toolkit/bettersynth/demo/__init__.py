"""bettersynth.demo."""
