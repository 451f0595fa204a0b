"""MGM-2B training: the stage spec (stages.py), lazy data, samplers, the loop, checkpoints, ``bsynth train``.

Entry points: ``bsynth train ...`` / ``python -m bettersynth.train ...`` (run.py). What a stage is
(global batch, learning rate and schedule, what trains, image handling, outputs, memory model)
is stages.py; the conversation template is bettersynth/template.py, shared with the eval.
"""
