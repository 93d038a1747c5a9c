"""JUnit XML for CI systems: one testsuite per plan, one testcase per check.

A deviation is a ``<failure>``, a check that could not be evaluated an
``<error>``; a variation passes, marked by a property (on the testsuite, as
``variation:<check id>``, since the common JUnit schema allows properties
there only) and by its text in ``<system-out>``.  A check that does not make
the verdict (informational, or graded-if-contoured on a structure that is not
contoured) is ``<skipped>`` whatever its status, so that failures and errors
are exactly the checks behind the verdict.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rtcheck import __version__
from collections.abc import Sequence

from rtcheck.render.style import STATUS_STYLES, JunitElement, not_counted_note
from rtcheck.render.terminal import format_value
from rtcheck.results import CheckOutcome, CheckResult, Status


def _count(checks: Sequence[CheckOutcome], element: JunitElement) -> int:
    return sum(c.counts and STATUS_STYLES[c.status].junit is element for c in checks)


def _describe(check: CheckOutcome) -> str:
    value = format_value(check.value, check.unit)
    variation = f"; variation acceptable {check.variation_acceptable}" if check.variation_acceptable else ""
    roi = f" (ROI {check.roi_name})" if check.roi_name and check.roi_name != check.structure else ""
    return f"{check.structure}{roi} {check.metric} = {value}; per protocol {check.per_protocol}{variation}; {check.message}"


def _suite(result: CheckResult) -> ET.Element:
    checks = result.checks
    failures = _count(checks, JunitElement.FAILURE)
    errors = _count(checks, JunitElement.ERROR)
    suite = ET.Element(
        "testsuite",
        name=f"{result.plan_label or result.plan_sop_instance_uid} [{result.protocol_id} {result.arm}]",
        tests=str(len(checks)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(sum(not c.counts for c in checks)),
        time="0",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("rtcheck_version", __version__),
        ("protocol", result.protocol_id),
        ("protocol_sha256", result.protocol_sha256),
        ("arm", result.arm),
        ("plan_label", result.plan_label),
        ("plan_sop_instance_uid", result.plan_sop_instance_uid),
        ("patient_id", result.patient_id),
        ("verdict", result.verdict.value),
    ):
        ET.SubElement(properties, "property", name=name, value=value or "")
    for check in checks:
        if check.status is Status.VARIATION_ACCEPTABLE:
            ET.SubElement(properties, "property", name=f"variation:{check.id}", value=_describe(check))
    for check in checks:
        case = ET.SubElement(
            suite,
            "testcase",
            name=f"{check.id} {check.metric}" + (f" ({note})" if (note := not_counted_note(check)) else ""),
            classname=f"rtcheck.{result.protocol_id}.{result.arm}.{check.structure}",
            time="0",
        )
        text = _describe(check)
        style = STATUS_STYLES[check.status]
        if not check.counts:
            ET.SubElement(case, "skipped", message=f"{note}, not counted in the verdict: {style.phrase}")
        elif style.junit is not None:
            # A failure names the check (its text says why); an error says why the check could not be evaluated.
            detail = check.id if style.junit is JunitElement.FAILURE else check.message
            ET.SubElement(case, style.junit.value, message=f"{style.phrase}: {detail}", type=check.status.value).text = text
        ET.SubElement(case, "system-out").text = f"{check.status.value}: {text}"
    return suite


def render_junit(results: Sequence[CheckResult]) -> str:
    """The JUnit XML document (UTF-8 text) of some checked plans."""
    root = ET.Element(
        "testsuites",
        name="rtcheck",
        tests=str(sum(len(r.checks) for r in results)),
        failures=str(sum(_count(r.checks, JunitElement.FAILURE) for r in results)),
        errors=str(sum(_count(r.checks, JunitElement.ERROR) for r in results)),
    )
    for result in results:
        root.append(_suite(result))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
