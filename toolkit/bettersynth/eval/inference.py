"""One eval shard end to end (questions -> answers file), and the merge of finished shards.

A shard takes the ``chunk_idx``-th of ``num_chunks`` contiguous, near-equal slices of the questions,
checks that their images are there and are images by their headers (before the model loads: a
bad file found while answering would cost the load and the answers so far), answers them with
``AnswerEngine`` and writes its answer lines atomically. The merge concatenates
shard files in shard order and checks the result holds exactly the questions, in question order,
all answered by one model (``model_id``), before writing it (atomically); a missing shard file is an
error.

    bsynth eval textvqa --checkpoint DIR --questions Q.jsonl --image-folder IMGS --answers-file OUT.jsonl
    bsynth eval mmbench --checkpoint DIR --tsv mmbench_dev_20230712.tsv --answers-file OUT.jsonl
    bsynth eval merge --out bm1.jsonl --textvqa-questions Q.jsonl 2_0.jsonl 2_1.jsonl
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Sequence

from bettersynth.eval import mmbench, textvqa
from bettersynth.eval.files import EvalDataError, read_jsonl, shard_range
from bettersynth.files import write_jsonl_atomic
from bettersynth.eval.generate import AnswerEngine, GenerationSettings, ImageSource

MAX_LISTED = 5


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_image_headers(sources: Sequence[ImageSource], shard: str) -> None:
    """EvalDataError naming the images of ``sources`` that are not images by their header, before the
    model loads (a fault found while answering would cost the load and the answers so far); an image
    that several sources share is read once."""
    distinct: dict[tuple[str, str], ImageSource] = {}
    for source in sources:
        distinct.setdefault(source.content_key, source)
    problems = [problem for problem in (source.header_problem() for source in distinct.values()) if problem]
    if problems:
        raise EvalDataError(f"{len(problems)} image(s) of {shard} cannot be read: {problems[:MAX_LISTED]}")


def _answered(engine: AnswerEngine, requests, settings: GenerationSettings, shard: str) -> list[str]:
    """``engine.answer``, logging how long it took, the images it encoded and the GPU memory it peaked at."""
    start = time.monotonic()
    answers = engine.answer(requests, settings)
    seconds = time.monotonic() - start
    memory = engine.peak_memory()
    _log(f"{shard}: {len(answers)} answers ({engine.images_encoded} images encoded) in {seconds:.1f} s "
         f"(batch {settings.batch_size}, "
         f"{settings.images_per_pass} images a pass){'; ' + memory if memory else ''}")
    return answers


def run_textvqa_shard(checkpoint: Path, questions_path: Path, image_folder: Path, answers_file: Path,
                      num_chunks: int, chunk_idx: int, settings: GenerationSettings,
                      device: str | None = None) -> int:
    """Answer shard ``chunk_idx`` of the TextVQA questions; returns the number of answers."""
    questions = textvqa.read_questions(questions_path)
    shard = [questions[position] for position in shard_range(len(questions), num_chunks, chunk_idx)]
    missing = [q.image for q in shard if not (Path(image_folder) / q.image).is_file()]
    if missing:
        raise EvalDataError(f"{len(missing)} image(s) of shard {chunk_idx}/{num_chunks} not found under "
                            f"{image_folder}: {missing[:MAX_LISTED]}")
    _log(f"textvqa shard {chunk_idx}/{num_chunks}: {len(shard)} of {len(questions)} questions from {questions_path}")
    requests = [(q.prompt, ImageSource(path=Path(image_folder) / q.image)) for q in shard]
    check_image_headers([source for _, source in requests], f"textvqa shard {chunk_idx}/{num_chunks}")
    engine = AnswerEngine.load(checkpoint, device)
    answers = _answered(engine, requests, settings, f"textvqa shard {chunk_idx}/{num_chunks}")
    model_id = Path(checkpoint).name
    return write_jsonl_atomic(answers_file, (textvqa.answer_record(q, a, model_id) for q, a in zip(shard, answers)))


def run_mmbench_shard(checkpoint: Path, tsv_path: Path, answers_file: Path, num_chunks: int, chunk_idx: int,
                      settings: GenerationSettings, device: str | None = None) -> int:
    """Answer shard ``chunk_idx`` of the MMBench rows; returns the number of answers."""
    items = mmbench.read_items(tsv_path)
    shard = [items[position] for position in shard_range(len(items), num_chunks, chunk_idx)]
    _log(f"mmbench shard {chunk_idx}/{num_chunks}: {len(shard)} of {len(items)} rows from {tsv_path}")
    requests = [(item.user_message, ImageSource(base64_data=item.image_b64, label=f"{tsv_path}: index {item.index}"))
                for item in shard]
    check_image_headers([source for _, source in requests], f"mmbench shard {chunk_idx}/{num_chunks}")
    engine = AnswerEngine.load(checkpoint, device)
    answers = _answered(engine, requests, settings, f"mmbench shard {chunk_idx}/{num_chunks}")
    model_id = Path(checkpoint).name
    return write_jsonl_atomic(answers_file, (mmbench.answer_record(i, a, model_id) for i, a in zip(shard, answers)))


def expected_question_ids(textvqa_questions: Path | None = None, mmbench_tsv: Path | None = None) -> list[Any]:
    """The question ids a merged answer file must hold, in order."""
    if (textvqa_questions is None) == (mmbench_tsv is None):
        raise ValueError("give exactly one of textvqa_questions or mmbench_tsv")
    if textvqa_questions is not None:
        return [q.question_id for q in textvqa.read_questions(textvqa_questions)]
    return [int(index) for index in mmbench.read_tsv(mmbench_tsv)["index"]]


def merge_shards(shard_files: Sequence[Path], out: Path, expected_ids: list[Any]) -> int:
    """Concatenate shard answer files into ``out`` after checking they cover the questions in order, each
    line with its answer text."""
    missing = [str(path) for path in shard_files if not Path(path).is_file()]
    if missing:
        raise EvalDataError(f"missing shard file(s): {missing}; not merging")
    by_shard = {str(path): read_jsonl(path) for path in shard_files}
    for path, shard in by_shard.items():
        for line, record in enumerate(shard, start=1):
            if not isinstance(record.get("text"), str):
                raise EvalDataError(f"{path}: line {line}: `text` is {record.get('text')!r}, not an answer; "
                                    f"not merging into {out}")
    records = [record for shard in by_shard.values() for record in shard]
    models = {path: sorted({str(record.get("model_id")) for record in shard}) for path, shard in by_shard.items()}
    if len({model for names in models.values() for model in names}) > 1:
        listed = "; ".join(f"{path}: {', '.join(names)}" for path, names in models.items())
        raise EvalDataError(f"the shards hold answers of different models ({listed}); not merging into {out}")
    ids = [record.get("question_id") for record in records]
    if ids != expected_ids:
        first = next((n for n, (got, want) in enumerate(zip(ids, expected_ids)) if got != want),
                     min(len(ids), len(expected_ids)))
        raise EvalDataError(f"shards hold {len(ids)} answers for {len(expected_ids)} questions; first difference at "
                            f"answer {first}; not merging into {out}")
    return write_jsonl_atomic(out, records)
