"""Evaluation: TextVQA / MMBench inference from a finetuned checkpoint, answer files in the official
layout, local scoring (EvalAI-normalised TextVQA accuracy, MMBench circular accuracy) and the
challenge score against a reference run. Entry points: ``bsynth eval ...``, ``bsynth score ...``
(commands.py) and toolkit/eval/textvqa.sh, mmbench.sh."""
