"""Where a checkpoint's eval results live, under ``output/eval_results/<CKPT>/`` (official layout).

    textvqa/<CHUNKS>_<IDX>.jsonl                          one file per shard
    textvqa/bm1.jsonl                                     merged answers (question-file order)
    mmbench/shards/<SPLIT>/<CHUNKS>_<IDX>.jsonl           one file per shard
    mmbench/answers/<SPLIT>/<CKPT>.jsonl                  merged answers (TSV order)
    mmbench/answers_upload/<SPLIT>/<CKPT>.xlsx            the upload file
    scores.json                                           local scores (bsynth score run)

    from bettersynth.eval.results import ResultFiles
    files = ResultFiles(paths.eval_results_dir("MGM-2B-Finetune-default"))
    files.textvqa_answers, files.mmbench_answers("mmbench_dev_20230712")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bettersynth.eval.files import shard_file_name


@dataclass(frozen=True)
class ResultFiles:
    root: Path  # output/eval_results/<CKPT>; its name is the checkpoint name

    @property
    def checkpoint_name(self) -> str:
        return self.root.name

    @property
    def textvqa_dir(self) -> Path:
        return self.root / "textvqa"

    @property
    def textvqa_answers(self) -> Path:
        return self.textvqa_dir / "bm1.jsonl"

    def textvqa_shard(self, num_chunks: int, chunk_idx: int) -> Path:
        return self.textvqa_dir / shard_file_name(num_chunks, chunk_idx)

    def mmbench_answers(self, split: str) -> Path:
        return self.root / "mmbench" / "answers" / split / f"{self.checkpoint_name}.jsonl"

    def mmbench_upload(self, split: str) -> Path:
        return self.root / "mmbench" / "answers_upload" / split / f"{self.checkpoint_name}.xlsx"

    def mmbench_shard(self, split: str, num_chunks: int, chunk_idx: int) -> Path:
        return self.root / "mmbench" / "shards" / split / shard_file_name(num_chunks, chunk_idx)

    @property
    def scores(self) -> Path:
        return self.root / "scores.json"
