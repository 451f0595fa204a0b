"""``--seed`` (the main job's SEED): the same seed twice trains to identical losses on CPU; another
seed gives other losses (fresh projector weights, data order and the aux tower's drop path).

    HF_HUB_OFFLINE=1 python -m pytest tests/train/test_seed.py -q      (~1 min)
"""

from __future__ import annotations

from train_helpers import run_in_process, stage_argv, write_subset


def test_same_seed_same_losses_other_seed_other_losses(demo_layout_for_tests, pretrain_records, tmp_path):
    data = write_subset(pretrain_records[:16], tmp_path / "pretrain.json")

    def losses(name: str, seed: int) -> list[float]:
        outcome = run_in_process(stage_argv(demo_layout_for_tests, data, tmp_path / name, "pretrain",
                                            "--seed", str(seed)))
        return [entry["loss"] for entry in outcome.state.log_history]

    first, again, other = losses("a", 7), losses("b", 7), losses("c", 8)
    assert len(first) == 4
    assert first == again
    assert first != other
