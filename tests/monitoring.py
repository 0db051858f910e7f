"""The Prometheus and Grafana files of deploy/, and the metric names their queries use."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES = DEPLOY / "prometheus" / "rules" / "driftstream.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "driftstream_test.yml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "driftstream.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "driftstream.json"

PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes itself for every target; no exporter serves them."""

GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$model": ".*"}
"""What Grafana puts in for its variables, so a query can be checked as plain PromQL."""

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_:][\w:]*")


def load_yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


def load_dashboard() -> dict[str, Any]:
    document = json.loads(DASHBOARD.read_text())
    assert isinstance(document, dict)
    return document


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL query of the dashboard (panels and annotations), variables filled in."""
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    for variable in dashboard["templating"]["list"]:
        # label_values(metric, label) is Grafana's, not PromQL: the metric is what it reads
        match = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["query"]["query"])
        assert match, variable
        queries.append(match.group(1))
    return [fill_variables(query) for query in queries]


def fill_variables(query: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        query = query.replace(name, value)
    assert "$" not in query, f"unknown Grafana variable in {query!r}"
    return query


def rule_queries(rules: dict[str, Any]) -> list[str]:
    return [str(rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def accuracy_threshold(rules: dict[str, Any]) -> float:
    """The accuracy below which the DriftstreamAccuracyLow rule fires."""
    (expr,) = (
        rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "DriftstreamAccuracyLow"
    )
    match = re.fullmatch(r"driftstream_model_accuracy\s*<\s*([0-9.]+)", expr.strip())
    assert match, expr
    return float(match.group(1))


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query reads (not functions, labels, keywords or numbers)."""
    text = _STRING.sub('""', query)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)  # grouping labels
    return {
        match.group()
        for match in _IDENTIFIER.finditer(text)
        if match.group().lower() not in _KEYWORDS
        and not text[match.end() :].lstrip().startswith("(")
    }


def exported_names(exposition: str) -> set[str]:
    """The sample names of a text exposition, as Prometheus stores them (with _total,
    _bucket, _count, _sum)."""
    return {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The values of one sample name in a text exposition, keyed by their sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }


def total(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` that have (at least) ``labels``."""
    wanted = set(labels.items())
    return sum(v for key, v in samples(exposition, name).items() if wanted <= set(key))


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run Prometheus's own checker (Debian package ``prometheus``, installed by setup.sh)."""
    executable = shutil.which("promtool")
    assert executable, "promtool is missing: run scripts/setup.sh (apt package prometheus)"
    return subprocess.run(
        [executable, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
