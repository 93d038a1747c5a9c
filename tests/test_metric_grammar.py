import pytest

from rtcheck.errors import MetricSyntaxError
from rtcheck.metrics.grammar import MetricKind, parse_metric


@pytest.mark.parametrize(
    "text, kind, argument, argument_unit, output_unit",
    [
        ("D95%[Gy]", MetricKind.DOSE_AT_VOLUME, 95.0, "%", "Gy"),
        ("D0.03cc[Gy]", MetricKind.DOSE_AT_VOLUME, 0.03, "cc", "Gy"),
        ("D2cc[%]", MetricKind.DOSE_AT_VOLUME, 2.0, "cc", "%"),
        ("D99.5%[cGy]", MetricKind.DOSE_AT_VOLUME, 99.5, "%", "cGy"),
        ("V20Gy[%]", MetricKind.VOLUME_AT_DOSE, 20.0, "Gy", "%"),
        ("V5Gy[cc]", MetricKind.VOLUME_AT_DOSE, 5.0, "Gy", "cc"),
        ("V95%[%]", MetricKind.VOLUME_AT_DOSE, 95.0, "%", "%"),
        ("V4500cGy[%]", MetricKind.VOLUME_AT_DOSE, 4500.0, "cGy", "%"),
        ("DC2cc[Gy]", MetricKind.DOSE_COMPLEMENT, 2.0, "cc", "Gy"),
        ("CV20Gy[cc]", MetricKind.VOLUME_COMPLEMENT, 20.0, "Gy", "cc"),
        ("Mean[Gy]", MetricKind.MEAN, None, None, "Gy"),
        ("Max[%]", MetricKind.MAX, None, None, "%"),
        ("Min[cGy]", MetricKind.MIN, None, None, "cGy"),
        ("D.5cc[Gy]", MetricKind.DOSE_AT_VOLUME, 0.5, "cc", "Gy"),
    ],
)
def test_valid_metrics_parse(text, kind, argument, argument_unit, output_unit):
    metric = parse_metric(text)
    assert (metric.kind, metric.argument, metric.argument_unit, metric.output_unit) == (kind, argument, argument_unit, output_unit)
    assert str(metric) == text


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("", 0, "empty"),
        ("X95%[Gy]", 0, "expected D, DC, V"),
        ("D95[Gy]", 3, "volume unit"),
        ("D95%", 4, "missing output unit"),
        ("D95%[Gy", 7, "']'"),
        ("D95%[Sv]", 5, "output unit"),
        ("D95% [Gy]", 4, "'['"),
        ("V20Gy[Gy]", 6, "output unit % or cc"),
        ("D%[Gy]", 1, "expected a number"),
        ("D9.%[Gy]", 3, "digit after the decimal point"),
        ("D95%[Gy]x", 8, "unexpected text"),
        ("D120%[Gy]", 1, "between 0 and 100"),
        ("V20Gy[%]]", 8, "unexpected text"),
        ("mean[Gy]", 0, "expected D, DC, V"),
        ("V20[%]", 3, "dose unit"),
    ],
)
def test_invalid_metrics_point_at_the_character(text, position, words):
    with pytest.raises(MetricSyntaxError) as info:
        parse_metric(text)
    assert info.value.position == position
    assert words in str(info.value)
    # One line that gives the 1-based character and the text before it.
    message = str(info.value)
    assert "\n" not in message
    assert f"at character {position + 1}" in message
    if position:
        assert f"after {text[:position]!r}" in message


def test_prescription_dependence():
    assert parse_metric("D95%[%]").needs_prescription
    assert parse_metric("V95%[cc]").needs_prescription
    assert not parse_metric("V20Gy[%]").needs_prescription
    assert not parse_metric("D95%[Gy]").needs_prescription
