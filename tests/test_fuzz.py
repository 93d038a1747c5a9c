"""A seeded fuzz campaign on the sample plans (issue 12, item 4): damaged inputs never make an internal error.

Each case copies one sample plan set, damages one of its files and runs ``rtcheck check`` (some cases
``rtcheck dvh``) in this process, asserting:

* no internal error (exit 3) and no traceback: exit 0, 1 or 2;
* every line on stderr is rtcheck's own one-line message; an error (exit 2) names a file of the case;
* no hang (each case has a time limit, SIGALRM);
* the inputs are unchanged.

Damage is of two kinds, picked by a seeded generator: an element mutation written with pydicom (a number
the reader uses set to NaN, infinity, 0, a negative, 1e+-300, text, a wrong count; an element deleted)
and byte-level damage (a file truncated, bytes flipped, a run overwritten).  The CI runs
``DEFAULT_CASES``; ``RTCHECK_FUZZ_CASES=2000`` (and ``RTCHECK_FUZZ_SEED``) run a longer campaign.  A
failing case prints its number and damage, so that it can be replayed and kept as a named regression
test.  Findings so far: an ``--arm auto`` error that named no file (now
tests/test_input_walk.py::test_an_arm_that_cannot_be_chosen_names_the_plan_file); the damage the
issue's campaign met is covered by tests/test_numeric_validation.py and tests/test_unusable_contours.py.
A 2 000-case run (seed 12, ``RTCHECK_FUZZ_CASES=2000``) passed with 0 failures in 19.6 min on a loaded
2-core machine; the 200 CI cases take about 1.5 min.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import signal
import warnings
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.cli_helpers import rtcheck

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
SETS = ["cr-pr-compliant", "sd-pd-compliant", "cr-pr-lung-v20-high", "sd-pd-pgtv-undercovered", "cr-pr-wrong-fractions"]
DEFAULT_CASES = 200
CASES = int(os.environ.get("RTCHECK_FUZZ_CASES", DEFAULT_CASES))
SEED = int(os.environ.get("RTCHECK_FUZZ_SEED", 12))
CASE_SECONDS = 60

# The elements whose numbers or codes the reader uses (anywhere in the data set, sequences included).
NUMERIC = [
    "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "GridFrameOffsetVector", "DoseGridScaling",
    "NumberOfFrames", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "ContourData", "NumberOfContourPoints", "ROINumber", "ReferencedROINumber",
    "NumberOfFractionsPlanned", "TargetPrescriptionDose", "DeliveryMaximumDose", "BeamDose", "BeamMeterset",
    "DoseReferenceNumber", "ReferencedDoseReferenceNumber", "FractionGroupNumber", "BeamNumber", "ReferencedBeamNumber",
    "NumberOfBeams", "ControlPointIndex", "NominalBeamEnergy", "GantryAngle", "CumulativeMetersetWeight",
    "DVHDoseScaling", "DVHVolumeUnits", "DVHNumberOfBins", "DVHData", "DVHMinimumDose", "DVHMaximumDose",
]
CODED = [
    "ContourGeometricType", "DoseUnits", "DoseType", "DoseSummationType", "RTROIInterpretedType", "DoseReferenceType",
    "DoseReferenceStructureType", "SOPClassUID", "SOPInstanceUID", "FrameOfReferenceUID", "ReferencedSOPInstanceUID",
    "ReferencedFrameOfReferenceUID", "ROIName", "RTPlanLabel",
]
NUMBERS = ["NaN", "inf", "-inf", "0", "-1", "-0.001", "1e300", "1e-300", "-1e300", "99999999999", "abc", ""]
CODES = ["", "UNKNOWN", "NaN", "1.2.3", "\\", "X" * 70]


@dataclass
class Damage:
    description: str


def _nodes(ds: Dataset):
    """Every data set of ``ds``, its sequence items included."""
    yield ds
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield from _nodes(item)


def _mutate_element(rng: random.Random, path: Path) -> Damage | None:
    ds = pydicom.dcmread(path)
    keywords = NUMERIC + CODED
    found = [(node, kw) for node in _nodes(ds) for kw in keywords if kw in node]
    if not found:
        return None
    node, keyword = rng.choice(found)
    action = rng.random()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values written on purpose
        try:
            description = _apply(rng, path, node, keyword, action)
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=False)
        except Exception:  # a value pydicom cannot even hold or write: another damage is drawn
            return None
    path.write_bytes(buffer.getvalue())
    return Damage(description)


def _apply(rng: random.Random, path: Path, node: Dataset, keyword: str, action: float) -> str:
    element = node[keyword]
    if action < 0.15:
        del node[keyword]
        return f"{path.name}: {keyword} deleted"
    if action < 0.3 and element.VM > 1:
        values = list(element.value)
        element.value = values[:-1] if rng.random() < 0.5 else [*values, values[-1]]
        return f"{path.name}: {keyword} given {len(element.value)} values instead of {len(values)}"
    mutant = rng.choice(NUMBERS if keyword in NUMERIC else CODES)
    if element.VM > 1:
        values = [str(v) for v in element.value]
        values[rng.randrange(len(values))] = mutant
        element.value = values
    elif element.VR in ("US", "SS", "UL", "SL"):
        element.value = rng.choice([0, 1, 65535, 2**31 - 1])
        mutant = str(element.value)
    elif element.VR in ("OW", "OB"):
        element.value = element.value[: len(element.value) // 2]
        mutant = "half its bytes"
    else:
        element.value = mutant
    return f"{path.name}: {keyword} = {mutant!r}"


def _damage_bytes(rng: random.Random, path: Path) -> Damage:
    data = bytearray(path.read_bytes())
    kind = rng.choice(["truncate", "flip", "overwrite"])
    if kind == "truncate":
        cut = rng.randrange(0, len(data))
        del data[cut:]
        description = f"{path.name}: truncated at byte {cut}"
    elif kind == "flip":
        positions = [rng.randrange(132, len(data)) for _ in range(rng.randint(1, 20))]
        for position in positions:
            data[position] ^= 1 << rng.randrange(8)
        description = f"{path.name}: {len(positions)} bits flipped"
    else:
        start = rng.randrange(132, len(data))
        length = rng.randint(1, 64)
        data[start : start + length] = bytes([rng.choice([0x00, 0xFF])]) * len(data[start : start + length])
        description = f"{path.name}: {length} bytes overwritten at {start}"
    path.write_bytes(bytes(data))
    return Damage(description)


def make_case(index: int, folder: Path) -> Damage:
    """Case ``index`` of the campaign seeded with SEED: a sample set copied into ``folder`` and damaged."""
    rng = random.Random(f"{SEED}-{index}")
    shutil.copytree(SAMPLES / rng.choice(SETS), folder)
    files = sorted(folder.glob("*.dcm"))
    while True:
        target = rng.choice(files)
        if rng.random() < 0.6:
            damage = _mutate_element(rng, target)
            if damage is not None:
                return damage
        else:
            return _damage_bytes(rng, target)


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def run_case(index: int, tmp_path: Path) -> None:
    folder = tmp_path / f"case{index}"
    damage = make_case(index, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    command = ["dvh", folder] if index % 5 == 4 else ["check", folder, "--protocol", "escc-induction-icrt-ccrt", "--arm", "auto"]
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        result = rtcheck(*command)
    except _Hang:
        pytest.fail(f"case {index} ({damage.description}): no answer within {CASE_SECONDS} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    where = f"case {index} ({damage.description}), exit {result.exit_code}: {result.stderr.strip()[:500]}"
    assert result.exit_code in (0, 1, 2), where
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, where
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("rtcheck: ") for line in lines), where
    if result.exit_code == 2:
        errors = [line for line in lines if line.startswith("rtcheck: error: ")]
        assert len(errors) == 1 and str(folder) in errors[0], where
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, f"{where}: an input was changed"


@pytest.mark.parametrize("index", range(CASES))
def test_damaged_inputs_never_make_an_internal_error(index, tmp_path):
    run_case(index, tmp_path)
