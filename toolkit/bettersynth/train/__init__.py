"""MGM-2B training: the gemma template, lazy data, samplers, the loop, checkpoints, ``bsynth train``.

Entry points: ``bsynth train ...`` / ``python -m bettersynth.train ...`` (run.py); the eval side
uses ``template.generation_prompt_ids``.
"""
