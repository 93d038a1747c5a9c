"""Validation of a protocol constraint's radiobiological fields (used by rtcheck.protocol.schema).

A constraint may carry::

    biology: {model: EQD2, alpha_beta_gy: 2, source: ...}   # or the qualifier in the metric text
    cumulative: true            # current + prior course (re-irradiation); needs EQD2 or BED
    recovery_credit:            # only with cumulative; applied with --prior-interval-months
      steps: [{after_months: 6, credit_pct: 25}, {after_months: 12, credit_pct: 50}]
      source: ...

The metric is returned with its alpha/beta resolved (the structure's default
when none is given), so reports show e.g. ``D0.03cc[EQD2Gy(a/b=2)]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtcheck.errors import MetricSyntaxError
from rtcheck.metrics.grammar import BIOLOGICAL_MODELS, Biology, Metric
from rtcheck.radiobiology.alpha_beta import structure_alpha_beta_gy
from rtcheck.radiobiology.recovery import RecoveryCredit, RecoveryStep


KEYS = {"biology", "cumulative", "recovery_credit", "written_for"}



@dataclass(frozen=True)
class BiologyFields:
    metric: Metric
    cumulative: bool
    recovery_credit: RecoveryCredit | None
    alpha_beta_note: str  # where the alpha/beta comes from ("" for a physical metric)


def parse_biology_fields(v: Any, body: dict, entry: str, metric: Metric, spec: Any) -> BiologyFields:
    """Validate ``biology``, ``cumulative`` and ``recovery_credit`` of constraint ``body``.

    ``v`` is the schema's validator (rtcheck.protocol.schema.Validator) (errors name the file and ``entry``);
    ``spec`` the constraint's StructureSpec (name, tg263, aliases, role).
    """
    note = ""
    raw = body.get("biology")
    if raw is not None:
        bio = v.mapping(raw, f"{entry}.biology", required={"model"}, optional={"alpha_beta_gy", "source"})
        if bio["model"] not in BIOLOGICAL_MODELS:
            raise v.fail(f"{entry}.biology.model", f"expected {' or '.join(BIOLOGICAL_MODELS)}, got {bio['model']!r}")
        alpha_beta = v.number(bio["alpha_beta_gy"], f"{entry}.biology.alpha_beta_gy") if "alpha_beta_gy" in bio else None
        if metric.biology is not None:
            raise v.fail(f"{entry}.biology", f"the metric {metric.text} already names its model; give it once")
        try:
            metric = metric.with_biology(Biology(bio["model"], alpha_beta))
        except MetricSyntaxError as exc:
            raise v.fail(f"{entry}.metric", f"{metric.text}: {exc.reason}") from None
        if alpha_beta is not None:
            note = "from the protocol" + (f": {v.text(bio['source'], f'{entry}.biology.source')}" if "source" in bio else "")
    elif metric.biology is not None and metric.biology.alpha_beta_gy is not None:
        note = "from the protocol's metric"
    if metric.biology is not None and metric.biology.alpha_beta_gy is None:
        alpha_beta, note = structure_alpha_beta_gy(spec)
        metric = metric.physical().with_biology(Biology(metric.biology.model, alpha_beta))

    cumulative = v.boolean(body.get("cumulative", False), f"{entry}.cumulative")
    if cumulative and metric.biology is None:
        raise v.fail(
            f"{entry}.cumulative",
            "a cumulative constraint adds courses of different fractionation: it needs an EQD2 or BED metric "
            "(biology: {model: EQD2, alpha_beta_gy: ...})",
        )
    credit = None
    if body.get("recovery_credit") is not None:
        where = f"{entry}.recovery_credit"
        if not cumulative:
            raise v.fail(where, "a recovery credit forgives part of a prior course: only for a cumulative constraint")
        raw_credit = v.mapping(body["recovery_credit"], where, required={"steps", "source"})
        steps_raw = raw_credit["steps"]
        if not isinstance(steps_raw, list) or not steps_raw:
            raise v.fail(f"{where}.steps", "expected a list such as [{after_months: 6, credit_pct: 25}]")
        steps: list[RecoveryStep] = []
        for i, item in enumerate(steps_raw):
            step = v.mapping(item, f"{where}.steps[{i}]", required={"after_months", "credit_pct"})
            months = v.number(step["after_months"], f"{where}.steps[{i}].after_months", positive=False)
            pct = v.number(step["credit_pct"], f"{where}.steps[{i}].credit_pct")
            if months < 0 or not 0 < pct < 100:
                raise v.fail(f"{where}.steps[{i}]", "expected after_months >= 0 and 0 < credit_pct < 100")
            if steps and (months <= steps[-1].after_months or pct < steps[-1].credit_pct):
                raise v.fail(f"{where}.steps[{i}]", "steps must come in increasing after_months with non-decreasing credit_pct")
            steps.append(RecoveryStep(months, pct))
        credit = RecoveryCredit(tuple(steps), v.text(raw_credit["source"], f"{where}.source"))
    return BiologyFields(metric, cumulative, credit, note)
