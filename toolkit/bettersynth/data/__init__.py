"""bettersynth.data: the data formats and guards between a recipe's output and training.

Library functions (each with a thin ``bsynth`` subcommand in ``commands.py``):
  dj_llava.dj_to_llava       Data-Juicer jsonl -> LLaVA json       (bsynth dj2llava)
  llava_dj.llava_to_dj       LLaVA json -> Data-Juicer jsonl       (bsynth llava2dj)
  sample_cap.sample_cap      the official 200k sample cap          (bsynth sample)
  validate.validate          per-line and per-image checks         (bsynth validate)
"""
