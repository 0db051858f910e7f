"""deploy/: the Prometheus config and alert rules pass promtool (syntax and the rules' own unit
tests), the Grafana dashboard is well formed, and every metric they query is one the worker
exports. tests/integration/test_metrics.py checks the same names against a running worker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from detectors.bank import DetectorBank
from detectors.signals import LABEL_COVERAGE, LABEL_DELAY, VOLUME
from schemas.events import DriftAlert
from stream_app.metrics import WorkerMetrics
from tests.event_examples import ALERT
from tests.factories import outcome, prediction
from tests.monitoring import (
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    PROMETHEUS_CONFIG,
    PROMETHEUS_OWN,
    RULE_TESTS,
    RULES,
    accuracy_threshold,
    dashboard_queries,
    exported_names,
    load_dashboard,
    load_yaml,
    metric_names,
    promtool,
    rule_queries,
)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    return load_yaml(RULES)


def every_metric_touched() -> str:
    """The exposition of a worker's metrics after each recording method ran once."""
    metrics = WorkerMetrics()
    bank = DetectorBank("m")
    bank.observe_prediction(prediction("r"))
    bank.observe_outcome(outcome("r"))
    metrics.count("m", "predictions")
    metrics.count(None, "deadlettered")
    metrics.alert(DriftAlert.model_validate(ALERT), published_at=datetime.now(UTC))
    metrics.consumed_message("join", datetime.now(UTC).timestamp())
    metrics.set_summary(bank.summary())
    metrics.set_consumer_lag({("t", 0): 1})
    metrics.set_assigned({"t": 0})
    return generate_latest(metrics.registry).decode()


def test_prometheus_config_is_valid() -> None:
    checked = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout


def test_alert_rules_are_valid_and_pass_their_unit_tests() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_rule_has_a_unit_test(rules: dict[str, Any]) -> None:
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = load_yaml(RULE_TESTS)["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert names == tested


def test_dashboard_queries_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule."""
    queries = dashboard_queries(dashboard)
    rule_file = tmp_path / "dashboard.yml"
    records = [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    checked = promtool("check", "rules", str(rule_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_queried_metric_is_exported(dashboard: dict[str, Any], rules: dict[str, Any]) -> None:
    exported = exported_names(every_metric_touched()) | PROMETHEUS_OWN
    queried = {
        name
        for query in dashboard_queries(dashboard) + rule_queries(rules)
        for name in metric_names(query)
    }
    assert queried, "no metric found in the queries"
    assert sorted(queried - exported) == []


def test_metric_names_are_read_from_promql() -> None:
    query = (
        'histogram_quantile(0.95, sum by (le, stage) (rate(a_bucket{x="y", z=~"b|c"}[5m])))'
        " / on (instance) group_left b_total offset 5m > 1e3 and c unless sum without (d) (e)"
    )
    assert metric_names(query) == {"a_bucket", "b_total", "c", "e"}
    assert metric_names('f{s="not_a_metric(x)"} or vector(1)') == {"f"}


def test_dashboard_panels(dashboard: dict[str, Any]) -> None:
    datasource_uid = load_yaml(DATASOURCES)["datasources"][0]["uid"]
    panels = dashboard["panels"]
    assert dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource_uid
            assert target["expr"].strip()
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    titles = {panel["title"] for panel in panels}
    assert {"Drift status", "Join rate", "Throughput", "Consumer lag"} <= titles


def test_panels_of_volume_label_health_data_quality_and_categories(
    dashboard: dict[str, Any],
) -> None:
    """Each panel selects signals the bank has (by name) or the quality gauge by its labels."""
    exprs = {
        panel["title"]: [target["expr"] for target in panel["targets"]]
        for panel in dashboard["panels"]
    }
    assert f'signal="{VOLUME.name}"' in exprs["Traffic volume"][0]
    coverage, delay = exprs["Label health"]
    assert f'signal="{LABEL_COVERAGE.name}"' in coverage
    assert f'signal="{LABEL_DELAY.name}"' in delay
    (quality,) = exprs["Data-quality problems"]
    assert metric_names(quality) == {"driftstream_data_quality_problems"}
    assert "by (model, feature, problem)" in quality
    (categories,) = exprs["Category shift"]
    assert 'signal=~"category:.*"' in categories
    assert all(
        metric_names(expr) == {"driftstream_signal_estimate"}
        for title in ("Traffic volume", "Label health", "Category shift")
        for expr in exprs[title]
    )


def test_dashboard_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, panel["title"]
        cells |= mine


def test_accuracy_panel_draws_the_alert_threshold(
    dashboard: dict[str, Any], rules: dict[str, Any]
) -> None:
    threshold = accuracy_threshold(rules)
    panel = next(
        p for p in dashboard["panels"] if "driftstream_model_accuracy" in p["targets"][0]["expr"]
    )
    defaults = panel["fieldConfig"]["defaults"]
    steps = [step["value"] for step in defaults["thresholds"]["steps"]]
    assert threshold in steps
    assert defaults["custom"]["thresholdsStyle"]["mode"] != "off"


def test_alert_annotations_come_from_the_alerts_counter(dashboard: dict[str, Any]) -> None:
    annotations = [a for a in dashboard["annotations"]["list"] if "expr" in a]
    assert annotations
    assert all("driftstream_alerts_total" in metric_names(a["expr"]) for a in annotations)
    assert all(a["enable"] for a in annotations)


def test_grafana_provisioning() -> None:
    datasources = load_yaml(DATASOURCES)["datasources"]
    assert [d["type"] for d in datasources] == ["prometheus"]
    providers = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert [p["type"] for p in providers] == ["file"]
