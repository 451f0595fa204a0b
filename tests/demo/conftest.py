"""Shared fixture of the demo tests: one demo build per test session, into a temporary root."""

from __future__ import annotations

import time

import pytest

from bettersynth.paths import AssetLayout


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> AssetLayout:
    """A complete demo build (seed 0) in a fresh temporary root; prints how long it took."""
    from bettersynth.demo.build import build_demo

    layout = AssetLayout(tmp_path_factory.mktemp("demo_root"))
    start = time.perf_counter()
    results = build_demo(layout, seed=0)
    print(f"\ndemo build: {time.perf_counter() - start:.1f} s "
          + ", ".join(f"{r.name} {r.seconds:.1f}s" for r in results))
    assert all(r.status == "built" for r in results)
    return layout
