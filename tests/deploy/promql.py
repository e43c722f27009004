"""The metric families the dashboards and alerts may use, and a reader of PromQL's metric names.

The families are the dialer's metrics contract (docs/operations.md, "Metrics"): names, types
and labels that the exporting code and these files agree on, the one list the tests of the
scrapes check (tests/observability/scrape.py). No PromQL parser is available
offline (promtool is a Go binary), so :func:`series_in` strips what is not a metric name
(strings, label matchers, ranges, grouping clauses, function names, keywords) and returns
what is left: enough to catch a misspelt or unknown metric, and a function applied to the
wrong type of series.
"""

from __future__ import annotations

import re
from typing import Literal, cast

from tests.observability.scrape import CONTRACT

Kind = Literal["counter", "gauge", "histogram"]

#: name -> (type, labels): the contract the scrape tests check the dialer's own metrics
#: against (counters named with their ``_total``, as a query selects them).
FAMILIES: dict[str, tuple[Kind, frozenset[str]]] = {
    (f"{name}_total" if kind == "counter" else name): (cast(Kind, kind), labels)
    for name, (kind, labels) in CONTRACT.items()
}
#: Series Prometheus makes itself for every target, and the labels scrape configs add.
BUILTIN_SERIES = {"up": "gauge"}
TARGET_LABELS = frozenset({"job", "instance", "role", "namespace", "le", "quantile"})


def series_kinds() -> dict[str, str]:
    """Every series name a query may select, with what it is: a counter, a gauge, or a
    histogram's ``_bucket``, ``_count`` or ``_sum`` (counters themselves)."""
    kinds: dict[str, str] = dict(BUILTIN_SERIES)
    for name, (kind, _labels) in FAMILIES.items():
        if kind == "histogram":
            kinds[f"{name}_bucket"] = "bucket"
            kinds[f"{name}_count"] = "counter"
            kinds[f"{name}_sum"] = "counter"
        else:
            kinds[name] = kind
    return kinds


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w$.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2"}
)
_RATE = re.compile(r"\b(rate|irate|increase)\s*\(\s*([A-Za-z_:][\w:]*)\s*\)")
_GAUGE_FN = re.compile(r"\b(delta|deriv|idelta|predict_linear)\s*\(\s*([A-Za-z_:][\w:]*)\s*\)")
_QUANTILE = re.compile(r"\bhistogram_quantile\s*\(")
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")


def _strip(expr: str) -> str:
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    previous = None
    while previous != text:  # ranges of subqueries nest: [10m:1m]
        previous = text
        text = _RANGE.sub("", text)
    return _GROUPING.sub("", text)


def series_in(expr: str) -> set[str]:
    """The series names ``expr`` selects."""
    return {
        match.group(1)
        for match in _IDENT.finditer(_strip(expr))
        if match.group(2) is None
        and match.group(1) not in _KEYWORDS
        and not match.group(1).startswith("$")
    }


def labels_in(expr: str) -> set[str]:
    """The label names ``expr`` matches on or groups by."""
    text = _STRING.sub('""', expr)
    names = {
        m.group(1) for block in _MATCHERS.findall(text) for m in _MATCHER_LABEL.finditer(block)
    }
    for clause in re.finditer(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)", text
    ):
        names |= {part.strip() for part in clause.group(1).split(",") if part.strip()}
    return names


def problems(expr: str) -> list[str]:
    """What is wrong with ``expr`` against the contract: unknown series, unknown labels,
    a rate of a gauge, a delta of a counter, a quantile of no histogram, unbalanced
    brackets. Empty when nothing is."""
    found: list[str] = []
    for opening, closing in ("()", "{}", "[]"):
        if expr.count(opening) != expr.count(closing):
            found.append(f"unbalanced {opening}{closing}")
    kinds = series_kinds()
    selected = series_in(expr)
    if not selected:
        found.append("selects no series")
    found += [f"unknown series {name}" for name in sorted(selected - kinds.keys())]
    known_labels = set(TARGET_LABELS)
    for name in selected:
        family = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
        if family in FAMILIES:
            known_labels |= FAMILIES[family][1]
        elif name in FAMILIES:
            known_labels |= FAMILIES[name][1]
    found += [f"unknown label {label}" for label in sorted(labels_in(expr) - known_labels)]
    stripped = _strip(expr)
    for fn, name in _RATE.findall(stripped):
        if kinds.get(name) not in {"counter", "bucket"}:
            found.append(f"{fn}() of {name}, which is not a counter")
    for fn, name in _GAUGE_FN.findall(stripped):
        if kinds.get(name) != "gauge":
            found.append(f"{fn}() of {name}, which is not a gauge")
    if _QUANTILE.search(stripped) and not any(kinds.get(n) == "bucket" for n in selected):
        found.append("histogram_quantile() over no _bucket series")
    return found
