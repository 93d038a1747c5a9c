"""Command line: parses arguments, calls rtcheck.api, renders, sets the exit code.

Exit codes: 0 per protocol or variation acceptable; 1 deviation unacceptable
or not evaluated (or a variation with ``--fail-on variation``); 2 usage or
input error; 3 internal error (a bug: please report it).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from datetime import datetime, timezone

import click

from rtcheck import __version__
from rtcheck.errors import RtcheckError
from rtcheck.net.gate import DEFAULT_LIMITS
from rtcheck.results import Status

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3


def _fail(message: str) -> None:
    click.echo(f"rtcheck: error: {message}", err=True)
    sys.exit(EXIT_INPUT)


def _warn(message: str) -> None:
    click.echo(f"rtcheck: warning: {message}", err=True)


def _library_warning(message, category, filename, lineno, file=None, line=None) -> None:
    parts = os.path.normpath(str(filename)).split(os.sep)
    # The library's name: the folder under site-packages (numpy, pydicom), else the file's folder.
    packages = [i for i, part in enumerate(parts) if part in ("site-packages", "dist-packages")]
    source = parts[packages[-1] + 1] if packages and packages[-1] + 1 < len(parts) else (parts[-2] if len(parts) > 1 else str(filename))
    _warn(f"{source} ({category.__name__}): {' '.join(str(message).split())}")


def _paint(text: str, status: Status) -> str:
    from rtcheck.render.style import STATUS_STYLES

    style = STATUS_STYLES[status]
    return click.style(text, fg=style.terminal_colour, bold=style.terminal_bold)


def _verdict_exit_code(verdicts: list[str], fail_on: str) -> int:
    """1 when any verdict fails (a deviation, a check not evaluated; a variation too with --fail-on variation), else 0."""
    failing = {Status.DEVIATION_UNACCEPTABLE.value, Status.NOT_EVALUATED.value}
    if fail_on == "variation":
        failing.add(Status.VARIATION_ACCEPTABLE.value)
    return EXIT_FAIL if failing.intersection(verdicts) else EXIT_OK


def _parse_map(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        name, sep, roi = value.partition("=")
        if not sep or not name.strip() or not roi.strip():
            raise click.BadParameter(f"{value!r} is not STRUCTURE=ROI", param_hint="--map")
        pairs.append((name.strip(), roi.strip()))
    return tuple(pairs)


def _prior_course(dose: str | None, fractions: int | None, interval_months: float | None):
    """The --prior-* options as a PriorCourse (None without --prior-dose)."""
    if dose is None:
        if fractions is not None or interval_months is not None:
            raise click.UsageError("--prior-fractions and --prior-interval-months need --prior-dose")
        return None
    if fractions is None:
        raise click.UsageError("--prior-dose needs --prior-fractions (the prior course's number of fractions)")
    from pathlib import Path

    from rtcheck.radiobiology.reirradiation import PriorCourse

    return PriorCourse(Path(dose), fractions, interval_months)


class _Group(click.Group):
    """Turns user errors into one line and exit 2; a bug into exit 3 with a short message."""

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                # A library's warning (pydicom, numpy) becomes one line of rtcheck's, never a multi-line dump.
                warnings.showwarning = _library_warning
                return super().invoke(ctx)
        except RtcheckError as exc:
            _fail(str(exc))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - last resort, keep pipelines' exit codes meaningful
            if os.environ.get("RTCHECK_DEBUG"):
                traceback.print_exc()
            click.echo(f"rtcheck: internal error: {type(exc).__name__}: {exc} (set RTCHECK_DEBUG=1 for the traceback)", err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(
    cls=_Group,
    epilog="Exit codes: 0 per protocol or variation acceptable; 1 deviation unacceptable or not evaluated; "
    "2 usage or input error; 3 internal error.",
)
@click.version_option(__version__, prog_name="rtcheck")
def main() -> None:
    """Check radiotherapy plans (DICOM RT Plan + RT Dose + RT Structure Set) against trial protocols."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--protocol", "protocol_id", required=True, help="Protocol id (see `rtcheck protocols`) or a protocol YAML file.")
@click.option("--arm", required=True, help="Arm of the protocol, e.g. cr-pr, or 'auto': the arm whose prescriptions match the plan's.")
@click.option("--plan", "plan_selector", help="Check only the plan with this SOP Instance UID or RT Plan Label.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--fail-on", type=click.Choice(["deviation", "variation"]), default="deviation", show_default=True,
              help="'variation' makes variation_acceptable exit 1 too.")
@click.option("--map", "structure_map", multiple=True, metavar="STRUCTURE=ROI",
              help="Use this ROI (exact name) for a protocol structure; repeatable.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=str),
              help="Also write the checks as JUnit XML to this file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=str),
              help="Also write the report as one self-contained HTML file (DVH plots inline).")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=str),
              help="Also write the report as PDF (needs the extra: pip install 'rtcheck[pdf]').")
@click.option("--anonymize", is_flag=True, help="Leave the patient's name, ID and dates out of the HTML/PDF report.")
@click.option("--prior-dose", type=click.Path(dir_okay=False, path_type=str),
              help="Re-irradiation: the prior course's RT Dose (same Frame of Reference), for cumulative EQD2/BED constraints.")
@click.option("--prior-fractions", type=click.IntRange(min=1), help="Number of fractions of the prior course (with --prior-dose).")
@click.option("--prior-interval-months", type=click.FloatRange(min=0),
              help="Months between the prior course and this one (for a recovery credit the protocol states).")
@click.option("--checks", "selection", type=click.Choice(["all", "integrity", "dvh"]), default="all", show_default=True,
              help="'integrity': only the plan's integrity checks (objects, dose calculation, beams, contours); "
                   "'dvh': only the prescription and DVH checks.")
@click.option("--structure-set", "structure_set", type=click.Path(dir_okay=False, path_type=str),
              help="Use this RT Structure Set (same patient and Frame of Reference) instead of the one the plan references.")
@click.option("--sum", "sum_plans", is_flag=True,
              help="The RT Plans found are one course (e.g. phase 1 + sequential boost): their doses added, checked as one.")
@click.option("--db", "db_url", metavar="URL", help="Also record the result in this results store (SQLite file or postgresql:// URL; see `rtcheck serve`).")
def check(paths, protocol_id, arm, plan_selector, output_format, fail_on, structure_map, junit_path, html_path, pdf_path, anonymize,
          prior_dose, prior_fractions, prior_interval_months, structure_set, sum_plans, db_url, selection):
    """Check the plan(s) found in PATHS (files and/or folders) against a protocol arm."""
    from rtcheck.api import check_paths
    from rtcheck.grading import CheckOptions
    from rtcheck.grading.options import CheckSelection

    if anonymize and not (html_path or pdf_path):
        raise click.UsageError("--anonymize applies to the --html and --pdf reports; give one of them")
    options = CheckOptions(
        structure_map=_parse_map(structure_map), prior=_prior_course(prior_dose, prior_fractions, prior_interval_months),
        checks=CheckSelection(selection),
    )
    store = _open_store(db_url) if db_url else None
    results = check_paths(list(paths), protocol_id, arm, plan=plan_selector, options=options, structure_set=structure_set, sum_plans=sum_plans)
    from rtcheck.files import InputGuard, OutputPlace, write_output
    from rtcheck.render.outputs import RenderOptions, Rendering

    rendering = Rendering(results, RenderOptions(
        anonymize=anonymize, generated_at=datetime.now(timezone.utc), paint=_paint if sys.stdout.isatty() else None,
    ))
    # Report files may sit beside the plan, never over one of its files.
    guard = InputGuard.of(paths, OutputPlace.BESIDE_INPUTS)
    for name, report_path in (("pdf", pdf_path), ("html", html_path), ("junit", junit_path)):
        if report_path:
            write_output(report_path, rendering[name], guard)
    if output_format == "json":
        for result in results:
            for note in result.notes:
                if note.endswith("skipped") or ": skipped, " in note:
                    _warn(note)
    click.echo(rendering.text(output_format))
    if store is not None:
        _record_results(store, results, os.path.abspath(html_path) if html_path else "")
    sys.exit(_verdict_exit_code([r.verdict.value for r in results], fail_on))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--structure", "structures", multiple=True, help="Only this ROI (repeatable); default all.")
@click.option("--metric", "metrics", multiple=True, help="TG-263 metric such as D95%[Gy] or V20Gy[%] (repeatable).")
@click.option("--rx-gy", type=float, help="Prescription dose (Gy) for % metrics; default the plan's highest prescription.")
@click.option("--plan", "plan_selector", help="Plan SOP Instance UID or label, when the inputs hold several.")
@click.option("--format", "output_format", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--compare-tps", is_flag=True,
              help="Compare with the planning system's own DVHs stored in the RT Dose (DVHSequence).")
@click.option("--fractions", type=click.IntRange(min=1),
              help="Fractions of the course, for EQD2/BED metrics (default: the plan's).")
def dvh(paths, structures, metrics, rx_gy, plan_selector, output_format, compare_tps, fractions):
    """DVH statistics of the ROIs in PATHS, without a protocol (no RT Plan needed)."""
    from rtcheck.api import dvh_statistics
    from rtcheck.metrics.grammar import parse_metric

    for metric in metrics:
        parse_metric(metric)  # syntax errors before any file is read
    if rx_gy is not None and rx_gy <= 0:
        raise click.BadParameter("must be positive", param_hint="--rx-gy")
    rows, notes = dvh_statistics(
        list(paths), structures=list(structures), metrics=list(metrics), rx_gy=rx_gy, plan=plan_selector, compare_tps=compare_tps,
        fractions=fractions,
    )
    for note in notes:
        _warn(note)
    from rtcheck.render.dvh import DvhReport, render_dvh

    click.echo(render_dvh(DvhReport(rows, metrics, compare_tps), output_format), nl=False)


@main.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--protocol", "protocol_id", required=True, help="Protocol id (see `rtcheck protocols`) or a protocol YAML file.")
@click.option("--arm", required=True, help="Arm of the protocol, or 'auto': for each plan, the arm whose prescriptions match.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder for the reports and summary.csv/summary.json; must lie apart from the inputs.")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes [default: the number of CPUs].")
@click.option("--html", is_flag=True, help="Also write an HTML report per plan.")
@click.option("--anonymize", is_flag=True, help="Leave the patient's name, ID and dates out of the HTML reports.")
@click.option("--dask-scheduler", metavar="ADDRESS", help="Run the checks on this Dask distributed scheduler (extra 'dask').")
@click.option("--fail-on", type=click.Choice(["deviation", "variation"]), default="deviation", show_default=True,
              help="'variation' makes variation_acceptable exit 1 too.")
@click.option("--map", "structure_map", multiple=True, metavar="STRUCTURE=ROI",
              help="Use this ROI (exact name) for a protocol structure; repeatable.")
@click.option("--db", "db_url", metavar="URL", help="Also record the result in this results store (SQLite file or postgresql:// URL; see `rtcheck serve`).")
@click.option("--sum", "sum_plans", is_flag=True,
              help="Check the RT Plans of one patient, Frame of Reference and structure set as one course when the arm has as many phases.")
def batch(roots, protocol_id, arm, out_dir, jobs, html, anonymize, dask_scheduler, fail_on, structure_map, db_url, sum_plans):
    """Check every plan found under ROOTS, grouping files into plan sets by UID references.

    Exit 2 if any set could not be checked (its row in the summary says why), else 1 or 0 as `check`.
    """
    from rtcheck.batch import run_batch
    from rtcheck.grading import CheckOptions
    from rtcheck.grading.options import CheckSelection

    if anonymize and not html:
        raise click.UsageError("--anonymize applies to the --html reports; give --html")
    if jobs is not None and dask_scheduler:
        raise click.UsageError("--jobs and --dask-scheduler exclude each other (the cluster sets the parallelism)")
    bar = None
    stored = _StoreTally(_open_store(db_url), "batch") if db_url else None

    def start(found) -> None:
        nonlocal bar
        for note in found.skipped + found.unassigned:
            _warn(note)
        if sys.stderr.isatty() and found.sets:
            bar = click.progressbar(length=len(found.sets), label="checking", file=sys.stderr, show_pos=True)
            bar.__enter__()

    try:
        outcome = run_batch(
            list(roots), protocol_id, arm, out_dir, jobs=jobs, html=html, anonymize=anonymize,
            options=CheckOptions(structure_map=_parse_map(structure_map)), dask_scheduler=dask_scheduler,
            on_start=start, on_row=lambda row: bar.update(1) if bar is not None else None, on_record=stored, sum_plans=sum_plans,
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for row in outcome.rows:
        if row.error:
            _warn(f"{row.plan_file or row.plan_uid}: {row.error}")
    tally = ", ".join(f"{n} {verdict}" for verdict, n in outcome.counts.items() if n)
    click.echo(f"{len(outcome.rows)} plan set(s): {tally or 'none found'}")
    click.echo(f"summary: {outcome.summary_csv}, {outcome.summary_json}")
    if stored is not None:
        click.echo(f"results store: {stored.added} check(s) added, {stored.already} already stored")
    if not outcome.rows:
        _fail(f"{', '.join(roots)}: no RT Plan or RT Dose found")
    if outcome.internal_errors:
        sys.exit(EXIT_INTERNAL)
    if any(row.error for row in outcome.rows):
        sys.exit(EXIT_INPUT)
    sys.exit(_verdict_exit_code([row.verdict for row in outcome.rows], fail_on))


@main.group(invoke_without_command=True, cls=click.Group)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def protocols(ctx, output_format):
    """List the available protocols (subcommands: list, show, validate, new, diff, import, export)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_command, output_format=output_format)


@protocols.command("list")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_command(output_format):
    """List the available protocols and their arms."""
    from rtcheck.protocol.library import list_protocols

    found = list_protocols()
    if output_format == "json":
        click.echo(json.dumps({"schema": "rtcheck.protocols/1", "protocols": [
            {"id": p.id, "title": p.title, "arms": list(p.arms), "path": str(p.path), "sha256": p.sha256,
             "radiotherapy": p.radiotherapy, "arms_without_radiotherapy": [a.id for a in p.arms.values() if not a.radiotherapy],
             "extends": p.bases[-1]["id"] if p.bases else None} for p in found
        ]}, indent=2, ensure_ascii=False))
        return
    for p in found:
        arms = ", ".join(a.id + ("" if a.radiotherapy else " (no radiotherapy)") for a in p.arms.values())
        extends = f"  (site overlay of {p.bases[-1]['id']})" if p.bases else ""
        click.echo(f"{p.id}  [{arms}]  {p.title}{extends}")


@protocols.command("show")
@click.argument("protocol_id")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def show_command(protocol_id, output_format):
    """Show a protocol: structures, arms, prescriptions and constraints with their sources."""
    from rtcheck.protocol.library import find_protocol
    from rtcheck.render.protocol import describe_protocol, protocol_document

    protocol = find_protocol(protocol_id)
    if output_format == "json":
        click.echo(json.dumps(protocol_document(protocol), indent=2, ensure_ascii=False))
    else:
        click.echo(describe_protocol(protocol))


@protocols.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def validate_command(files, output_format):
    """Validate protocol files: every error of every file, with its line; exit 2 if any is invalid."""
    from rtcheck.protocol.interchange import validate_file

    reports = []
    for path in files:
        protocol, findings = validate_file(path)
        reports.append({
            "file": path, "valid": not findings, "id": protocol.id if protocol else None,
            "arms": list(protocol.arms) if protocol else [], "sha256": protocol.sha256 if protocol else None,
            "error": str(findings[0]) if findings else None,
            "errors": [{"line": f.line, "entry": f.entry, "message": f.message} for f in findings],
        })
        if output_format == "table":
            if protocol is not None:
                click.echo(f"{path}: valid ({protocol.id}, arms {', '.join(protocol.arms)})")
            for finding in findings:
                click.echo(f"rtcheck: error: {finding}", err=True)
    if output_format == "json":
        click.echo(json.dumps({"schema": "rtcheck.protocol-validation/1", "files": reports}, indent=2, ensure_ascii=False))
    sys.exit(EXIT_OK if all(r["valid"] for r in reports) else EXIT_INPUT)


def _protocol_formats(kind: str | None = None) -> list[str]:
    from rtcheck.protocol.importers import FORMATS

    return [name for name, f in FORMATS.items() if kind is None or (f.write is not None) == (kind == "export")]


@protocols.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--format", "format_name", required=True, type=click.Choice(_protocol_formats()), help="The file's format.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=str), help="Write the YAML here (default: standard output).")
@click.option("--id", "protocol_id", help="Id of the imported protocol (default: from the file name).")
@click.option("--level", "levels", multiple=True, metavar="LABEL=STATUS",
              help="proknow: the status of an objective label (per_protocol, variation_acceptable, deviation_unacceptable); repeatable.")
def import_command(file, format_name, output, protocol_id, levels):
    """Import a protocol (or a TG-263 nomenclature) from another format as rtcheck YAML."""
    from rtcheck.protocol.interchange import import_file

    mapping = {}
    for item in levels:
        label, sep, status = item.partition("=")
        if not sep or not label.strip():
            _fail(f"--level {item!r}: expected LABEL=STATUS")
        mapping[label.strip()] = status.strip()
    if mapping and format_name != "proknow":
        _fail("--level applies to --format proknow only")
    imported = import_file(file, format_name, protocol_id=protocol_id, levels=mapping or None)
    for note in imported.not_imported:
        _warn(f"not imported: {note}")
    if output:
        from rtcheck.files import InputGuard, OutputPlace, write_output

        write_output(output, imported.yaml_text, InputGuard.of([file], OutputPlace.BESIDE_INPUTS))
    else:
        click.echo(imported.yaml_text, nl=False)


@protocols.command("export")
@click.argument("protocol_id")
@click.option("--format", "format_name", required=True, type=click.Choice(_protocol_formats("export")), help="The format to write.")
@click.option("--arm", "arm", help="The arm to export (required when the protocol has several).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=str), help="Write here (default: standard output).")
def export_command(protocol_id, format_name, arm, output):
    """Export one arm of a protocol to another format; what the format cannot hold is listed as warnings."""
    from rtcheck.protocol.importers import export_protocol
    from rtcheck.protocol.library import find_protocol

    protocol = find_protocol(protocol_id)
    exported = export_protocol(protocol, format_name, arm)
    for loss in exported.losses:
        _warn(f"not exported: {loss}")
    if output:
        from rtcheck.files import InputGuard, OutputPlace, write_output

        inputs = [protocol.path, *(b["path"] for b in protocol.bases)] if protocol.path else []
        write_output(output, exported.data, InputGuard.of(inputs, OutputPlace.BESIDE_INPUTS))
    else:
        click.echo(exported.data.decode("utf-8"), nl=False)


@protocols.command("new")
@click.option("--id", "protocol_id", help="The new protocol's id (default: from the title).")
@click.option("--title", default="PLACEHOLDER trial title", show_default=True)
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=str), help="Write here (refused if it exists; default: standard output).")
def new_command(protocol_id, title, output):
    """Write a commented protocol skeleton that validates, to edit step by step."""
    from rtcheck.protocol.authoring import skeleton

    text = skeleton(protocol_id, title, os.path.basename(output) if output else "protocol.yaml")
    if output:
        from rtcheck.files import InputGuard, OutputPlace, write_output

        if os.path.exists(output):
            _fail(f"{output}: exists; rtcheck protocols new does not replace a file")
        write_output(output, text, InputGuard.of([], OutputPlace.BESIDE_INPUTS))
    else:
        click.echo(text, nl=False)


@protocols.command("diff")
@click.argument("first")
@click.argument("second")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def diff_command(first, second, output_format):
    """List what differs between two protocols (ids or files): values, sources, structures, arms. Exit 1 if any."""
    from rtcheck.protocol.diff import diff_protocols
    from rtcheck.protocol.library import find_protocol

    differences = diff_protocols(find_protocol(first), find_protocol(second))
    if output_format == "json":
        click.echo(json.dumps({"schema": "rtcheck.protocol-diff/1", "a": first, "b": second, "differences": [
            {"where": d.where, "change": d.change, "a": d.before, "b": d.after} for d in differences
        ]}, indent=2, ensure_ascii=False))
    else:
        for d in differences:
            click.echo(str(d))
        if not differences:
            click.echo(f"{first} and {second}: no difference")
    sys.exit(EXIT_FAIL if differences else EXIT_OK)


def _ae_title(ctx, param, value):
    """An AE title: 1-16 printable characters, no backslash, not only spaces."""
    values = value if isinstance(value, tuple) else (value,)
    for title in values:
        if not title.strip() or len(title) > 16 or "\\" in title or not title.isprintable() or not title.isascii():
            raise click.BadParameter(f"{title!r} is not an AE title (1-16 ASCII characters, no backslash)")
    return tuple(t.strip() for t in values) if isinstance(value, tuple) else value.strip()


@main.command()
@click.option("--port", type=click.IntRange(1, 65535), help="TCP port to listen on (required unless --status).")
@click.option("--ae-title", default="RTCHECK", show_default=True, callback=_ae_title,
              help="Our AE title; the called AE title of an association must match it.")
@click.option("--store", "store", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder for received files: DIR/<PatientID>/<StudyInstanceUID>/<Modality>.<SOPInstanceUID>.dcm.")
@click.option("--protocol", "protocol_id", help="Protocol id (see `rtcheck protocols`) or a protocol YAML file.")
@click.option("--arm", help="Arm of the protocol, or 'auto': for each plan, the arm whose prescriptions match.")
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--allow-ae", "allowed", multiple=True, callback=_ae_title,
              help="Accept associations only from this calling AE title; repeatable (default: any).")
@click.option("--settle", "settle_s", type=click.FloatRange(0, 3600), default=3.0, show_default=True,
              help="Seconds without a new instance of a plan's set before it is checked.")
@click.option("--html/--no-html", default=True, show_default=True,
              help="Also write the HTML report (it takes longer than the check of a small plan).")
@click.option("--log-json", is_flag=True, help="Log one JSON object per line instead of plain text.")
@click.option("--request-timeout", "request_timeout_s", type=click.FloatRange(0.1, 600), show_default=True,
              default=DEFAULT_LIMITS.request_timeout_s,
              help="Seconds a new connection has to send its A-ASSOCIATE request before it is closed.")
@click.option("--max-per-address", type=click.IntRange(1, 10000), default=DEFAULT_LIMITS.max_per_address,
              show_default=True, help="Open connections allowed from one IP address.")
@click.option("--max-connections", type=click.IntRange(1, 10000), default=DEFAULT_LIMITS.max_connections,
              show_default=True, help="Open connections allowed in all.")
@click.option("--status", "show_status", is_flag=True,
              help="Do not listen: list the plans in --store received but not yet reported, and why; then exit.")
@click.option("--db", "db_url", metavar="URL", help="Also record the result in this results store (SQLite file or postgresql:// URL; see `rtcheck serve`).")
@click.option("--sum", "sum_plans", is_flag=True,
              help="For an arm with phases: check the RT Plans of one patient, Frame of Reference and structure set as "
                   "one course once every phase's plan has arrived and settled.")
def listen(port, ae_title, store, protocol_id, arm, bind, allowed, settle_s, html, log_json, request_timeout_s,
           max_per_address, max_connections, show_status, db_url, sum_plans):
    """Receive plans over DICOM (C-STORE) and check each complete set on arrival.

    Reports rtcheck-<PlanSOPInstanceUID>.json/.xml/.html are written next to
    the plan (with --sum, rtcheck-course-<UID of its first plan>.* for a
    course of several plans). Runs until interrupted (Ctrl-C or SIGTERM; it ends within 5 s
    whatever the peers do), then exits 0.
    """
    import signal
    import threading
    from pathlib import Path

    from rtcheck.net.gate import ConnectionLimits
    from rtcheck.net.logs import configure
    from rtcheck.net.scp import Listener, ListenerConfig
    from rtcheck.protocol.library import find_protocol

    if show_status:
        _listen_status(Path(store), log_json)
        return
    for name, value in (("--port", port), ("--protocol", protocol_id), ("--arm", arm)):
        if value is None:
            raise click.UsageError(f"Missing option '{name}' (required unless --status).")
    protocol = find_protocol(protocol_id)
    protocol.ensure_checkable(arm)
    if sum_plans:
        protocol.course_phases(arm)  # a usage error (exit 2) before anything listens
    configure(as_json=log_json)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    limits = ConnectionLimits(request_timeout_s, max_per_address, max_connections)
    on_result = _StoreTally(_open_store(db_url), "listen").result if db_url else None
    listener = Listener(ListenerConfig(Path(store), port, ae_title, protocol, arm, bind, allowed, settle_s, html, limits,
                                       on_result=on_result, sum_plans=sum_plans))
    listener.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        everything_ended = listener.stop()
    if not everything_ended:
        # A thread still runs (an abandoned check inside native code, an association pynetdicom has not ended):
        # every acknowledged file is durable and temporary files are gone, so end the process here rather than
        # let the interpreter wait for it (or abort while finalising around it).
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    sys.exit(EXIT_OK)


def _listen_status(store, as_json: bool) -> None:
    """``rtcheck listen --status``: one line per plan without a current report (JSON lines with --log-json)."""
    from dataclasses import asdict

    from rtcheck.net.logs import render_plain
    from rtcheck.net.status import store_status

    if not store.is_dir():
        raise click.UsageError(f"--store {store}: no such folder")
    pending, running = store_status(store)
    for item in pending:
        fields = {k: v if isinstance(v, int) else str(v) for k, v in asdict(item).items()}
        click.echo(json.dumps(fields, ensure_ascii=False) if as_json else render_plain("pending", fields))
    summary = {"pending": len(pending), "listener": "running" if running else "not running"}
    click.echo(json.dumps(summary) if as_json else render_plain("status", summary))


# --- Results store and review dashboard: --db of check/batch/listen, `serve`, `users`, `db` (rtcheck.store, rtcheck.web) ---


def _open_store(db_url: str):
    """The results store at ``--db`` (needs the extra 'dashboard'; PostgreSQL also 'postgresql')."""
    try:
        from rtcheck.store import open_store
    except ImportError as exc:
        _fail(f"--db needs the extra 'dashboard': pip install 'rtcheck[dashboard]' ({exc.name} is missing)")
    try:
        return open_store(db_url)
    except ImportError as exc:
        _fail(f"--db {db_url.split('@')[-1]}: needs the extra 'postgresql': pip install 'rtcheck[postgresql]' ({exc.name} is missing)")


class _StoreTally:
    """Records checks in the store as they come and counts what was new."""

    def __init__(self, store, origin: str) -> None:
        from rtcheck.store import Origin

        self.store, self.origin, self.added, self.already = store, Origin(origin), 0, 0

    def __call__(self, record, report_html: str = "") -> None:
        from dataclasses import replace

        from rtcheck.store import record_check

        if report_html:
            record = replace(record, report_html=report_html)
        if record_check(self.store, record, self.origin).created:
            self.added += 1
        else:
            self.already += 1

    def result(self, result, report_html: str = "") -> None:
        from rtcheck.store import build_record

        self(build_record(result), report_html)


def _record_results(store, results, report_html: str) -> None:
    tally = _StoreTally(store, "check")
    for result in results:
        tally.result(result, report_html)
    click.echo(f"rtcheck: results store: {tally.added} check(s) added, {tally.already} already stored", err=True)


_DB_OPTION = click.option("--db", "db_url", required=True, metavar="URL",
                          help="The results store: a SQLite file path, or postgresql://user@host/database.")


@main.command()
@click.option("--db", "db_url", metavar="URL", help="The results store: a SQLite file path, or postgresql://user@host/database.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on (0.0.0.0: every interface; put TLS in front).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="TCP port (0: any free port).")
@click.option("--anonymize", is_flag=True, help="Show patient IDs as pseudonyms; withhold names, dates, file paths and HTML reports.")
@click.option("--refresh", "refresh_s", type=click.IntRange(5, 3600), default=30, show_default=True,
              help="Seconds between reloads of the plan list (arrivals from `listen --db` appear).")
@click.option("--secure-cookies", is_flag=True, help="Send the session cookie over HTTPS only (behind a TLS proxy).")
@click.option("--demo", "demo_paths", multiple=True, type=click.Path(exists=True, path_type=str),
              help="Demonstration: check the plans under this folder (arm auto of --demo-protocol) into a temporary "
              "store, add a reviewer 'demo' with a one-time password, and serve it anonymized.")
@click.option("--demo-protocol", default="escc-induction-icrt-ccrt", show_default=True, help="The protocol of --demo.")
def serve(db_url, host, port, anonymize, refresh_s, secure_cookies, demo_paths, demo_protocol):
    """Serve the review dashboard of a results store (every page needs a login; see `rtcheck users add`)."""
    import logging
    import secrets
    import tempfile

    from rtcheck.web import DashboardSettings, make_dashboard_server

    if bool(db_url) == bool(demo_paths):
        raise click.UsageError("give --db URL, or --demo PATH for a demonstration on a temporary store")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="rtcheck-demo-") as scratch:
        if demo_paths:
            from rtcheck.batch import run_batch
            from rtcheck.store import Role
            from rtcheck.store.users import add_user

            store = _open_store(os.path.join(scratch, "demo.sqlite"))
            tally = _StoreTally(store, "batch")
            run_batch(list(demo_paths), demo_protocol, "auto", os.path.join(scratch, "out"), on_record=tally)
            password = secrets.token_urlsafe(12)
            add_user(store, "demo", password, Role.REVIEWER)
            anonymize = True
            click.echo(f"demo: {tally.added} plan(s) checked; log in as 'demo' with password {password}", err=True)
        else:
            store = _open_store(db_url)
        server = make_dashboard_server(store, host, port, DashboardSettings(anonymize=anonymize, refresh_s=refresh_s,
                                                                            secure_cookies=secure_cookies))
        click.echo(f"rtcheck dashboard on http://{host}:{server.server_port}/ (Ctrl-C to stop)", err=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            store.close()


@main.group("users")
def users_group():
    """Accounts of the dashboard (subcommands: add, disable, list)."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["viewer", "reviewer", "admin"]), required=True,
              help="viewer: reads; reviewer: also signs off; admin: also sees the accounts.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input (else prompt).")
@_DB_OPTION
def users_add(username, role, password_stdin, db_url):
    """Add an account (the password is stored as an argon2id hash)."""
    from rtcheck.store import Role
    from rtcheck.store.users import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    add_user(_open_store(db_url), username, password, Role(role))
    click.echo(f"user {username} added ({role})")


@users_group.command("disable")
@click.argument("username")
@_DB_OPTION
def users_disable(username, db_url):
    """Disable an account: no more logins, open sessions end (its sign-offs stay)."""
    from rtcheck.store.users import disable_user

    disable_user(_open_store(db_url), username)
    click.echo(f"user {username} disabled")


@users_group.command("list")
@_DB_OPTION
def users_list(db_url):
    """List the accounts."""
    from rtcheck.store.users import list_users

    for user in list_users(_open_store(db_url)):
        click.echo(f"{user.username}\t{user.role}\t{'active' if user.active else 'disabled'}")


@main.group("db")
def db_group():
    """The results store (subcommand: import)."""


@db_group.command("import")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=str))
@_DB_OPTION
def db_import(out_dir, db_url):
    """Record the check reports (rtcheck.check/1 JSON) of a `batch --out` folder or a listener's folder.

    Checks stored already are counted, not added again. The JSON reports hold no DVH curves,
    so their plan pages show none. Exit 2 if a file could not be read.
    """
    from rtcheck.store import import_reports, report_documents

    store = _open_store(db_url)
    files = report_documents(out_dir)
    with click.progressbar(length=len(files), label="importing", file=sys.stderr, show_pos=True) as bar:
        counts = import_reports(store, files, on_file=lambda _path: bar.update(1))
    for problem in counts.unreadable or []:
        _warn(problem)
    click.echo(f"{len(files)} JSON file(s): {counts.added} check(s) added, {counts.already_stored} already stored, "
               f"{counts.not_checks} not a check report, {len(counts.unreadable or [])} unreadable")
    sys.exit(EXIT_INPUT if counts.unreadable else EXIT_OK)

# --- end of the results store and dashboard block ---


if __name__ == "__main__":  # pragma: no cover
    main()
