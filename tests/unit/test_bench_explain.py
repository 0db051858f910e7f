"""bench.explain on a tiny configuration: its section, its counts, its cost and state figures."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from bench.explain import (
    CRITERIA,
    SCENARIOS,
    SECTION,
    Run,
    accuracy,
    main,
    measure_run,
    names_the_change,
    render,
)
from producers.scenarios import CONCEPT_CATEGORY_VALUE, Scenario
from schemas.events import DriftAlert, Explanation, SliceContribution
from tests.event_examples import ALERT

TINY = 3000
"""Predictions per stream: about a second each."""


def explained(feature: str, broad: bool = False, **where: object) -> Explanation:
    part = SliceContribution.model_validate(
        {
            "feature": feature,
            **where,
            "share_before": 0.1,
            "share_after": 0.1,
            "error_before": 0.1,
            "error_after": 0.6,
            "contribution": 0.05,
            "from_error": 0.05,
            "from_share": 0.0,
        }
    )
    return Explanation(slices=[part], broad=broad, n_before=700, n_after=300)


def alert(explanation: Explanation) -> DriftAlert:
    return DriftAlert.model_validate({**ALERT, "explanation": explanation})


def accuracy_rows(section: str) -> dict[str, list[str]]:
    """The accuracy table's cells by scenario (the rows whose second cell is a criterion)."""
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 8 and cells[1] in CRITERIA.values():
            rows[cells[0].strip("`")] = cells
    return rows


def test_a_tiny_run_writes_a_row_per_scenario_whose_counts_add_up_to_the_seeds(
    tmp_path: Path,
) -> None:
    output = tmp_path / "benchmarks.md"
    main(["--seeds", "1", "--predictions", str(TINY), "--rounds", "1", "--output", str(output)])
    section = output.read_text()
    assert f"\n{SECTION}\n" in section
    assert (
        f"`.venv/bin/python -m bench.explain --seeds 1 --predictions {TINY} --rounds 1`" in section
    )
    assert "| scenario | right when | right | wrong | no explained alert |" in section
    rows = accuracy_rows(section)
    assert sorted(rows) == sorted(str(s) for s in SCENARIOS)
    for cells in rows.values():
        right = int(cells[2].split("/")[0])
        assert right + int(cells[3]) + int(cells[4]) == 1, cells
        assert cells[6:] == [">= 1/1", "met" if right else "not met"]
    cost = re.search(r"^\| all \| ([\d,]+) \| ([\d,]+) \| ([\d.,]+) \| ([\d.,]+) \|", section, re.M)
    assert cost is not None
    events, outcomes, core, explainer = (float(x.replace(",", "")) for x in cost.groups())
    assert 0 < outcomes < events
    assert 0 < explainer < core * events / outcomes  # the explainer is a part of the core


def test_the_timed_explainer_kept_what_the_bank_kept_in_a_bounded_state() -> None:
    run = measure_run(Scenario.CONCEPT_BROAD, 0, TINY, rounds=2)  # raises if not the bank's
    assert run.predictions == TINY
    assert 0 < run.outcomes <= run.events - run.predictions
    # times: each measured; the explainer is a part of the core. (The predictions' share of
    # the explainer is most of it: two timings that close swap on a loaded machine.)
    assert run.prediction_seconds > 0
    assert 0 < run.explainer_seconds < run.core_seconds
    assert 1024 < run.state_bytes <= 64 * 1024 < run.bank_bytes


def test_only_the_changed_slice_on_top_or_broad_is_right_and_nine_of_ten_meet_the_target() -> None:
    zip3 = explained("zipcode", value=CONCEPT_CATEGORY_VALUE)
    assert names_the_change(Scenario.CONCEPT_CATEGORY, zip3)
    assert not names_the_change(Scenario.CONCEPT_CATEGORY, explained("zipcode", value="zip4"))
    assert names_the_change(Scenario.CONCEPT_RANGE, explained("salary", low=30_000.0))
    assert not names_the_change(Scenario.CONCEPT_RANGE, explained("salary", missing=True))
    assert not names_the_change(Scenario.CONCEPT_RANGE, explained("age", high=30.0))
    assert names_the_change(Scenario.CONCEPT_BROAD, explained("age", broad=True))
    assert not names_the_change(Scenario.CONCEPT_BROAD, zip3)

    base = Run(
        Scenario.CONCEPT_CATEGORY,
        0,
        alert(zip3),
        1800,
        1000,
        790,
        0.05,
        0.002,
        0.001,
        40_000,
        90_000,
    )
    wrong = alert(explained("salary", high=20_000.0))
    runs = [dataclasses.replace(base, seed=seed) for seed in range(8)]
    runs += [dataclasses.replace(base, seed=8, alert=wrong), dataclasses.replace(base, seed=9)]
    runs[3] = dataclasses.replace(runs[3], alert=None)
    counted = accuracy(runs)
    assert (counted.right, counted.wrong, counted.unexplained, counted.needed) == (8, 1, 1, 9)
    assert not counted.met
    section = render({Scenario.CONCEPT_CATEGORY: runs}, 10, 8000, 3, "cmd", "0.00, 0.00, 0.00")
    cells = accuracy_rows(section)["concept-category"]
    assert cells[2:] == ["8/10", "1", "1", "0", ">= 9/10", "not met"]
    assert "`concept-category` seed 8: where: salary<20,000" in section
    assert "`concept-category` seed 3: no critical concept alert" in section
    assert (
        "| all | 18,000 | 7,900 | 27.78 | 2.53 | 1.27 | 1.11 | 4.0% | 40,000 | 90,000 |" in section
    )
