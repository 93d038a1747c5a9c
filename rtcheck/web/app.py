"""The review dashboard (Flask, server-rendered templates, no JavaScript).

Pages: the plan list (filters), a plan's check (verdict, checks, DVH plots with the
constraints, notes, integrity checks, inputs, sign-offs and the sign-off form), a protocol
arm's cohort (per criterion: shares per status, distribution, this plan's percentile), a
criterion's trend with control limits, the audit export, the accounts (admin).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flask import Flask, Response, abort, g, redirect, render_template, request, send_file, session, url_for

from rtcheck import __version__
from rtcheck.errors import StoreError
from rtcheck.render.html import Redactor
from rtcheck.render.style import STATUS_STYLES
from rtcheck.results import Status
from rtcheck.store import cohort, queries, signoff
from rtcheck.store.database import ResultStore
from rtcheck.store.models import Check, Decision, Role, User, as_utc
from rtcheck.store.users import authenticate, list_users
from rtcheck.web.plots import distribution_svg, stored_dvh_svg, trend_svg
from rtcheck.web.security import CSRF_FIELD, LoginThrottle, Pseudonyms, csrf_token, tokens_match

__all__ = ["DashboardSettings", "create_app"]

LOG = logging.getLogger("rtcheck.web")
# The status phrases and colours of every renderer (one table), by status value as stored.
STATUS_WORDS = {status.value: STATUS_STYLES[status].phrase for status in Status}
_STATUS_CSS = " ".join(f".{status.value} {{ color: {STATUS_STYLES[status].colour}; }}" for status in Status)
_PUBLIC = {"login", "static"}


@dataclass
class DashboardSettings:
    """``anonymize``: patient IDs as pseudonyms, names/dates/paths withheld; ``refresh_s``: the plan
    list reloads itself this often (new arrivals appear); ``secret_key`` signs the session cookies
    (default: random per process, so a restart logs everyone out)."""

    anonymize: bool = False
    refresh_s: int = 30
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    secure_cookies: bool = False  # set behind an HTTPS proxy: cookies only over TLS
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


def create_app(store: ResultStore, settings: DashboardSettings | None = None) -> Flask:
    settings = settings or DashboardSettings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="rtcheck_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=256 * 1024,
    )
    pseudonym = Pseudonyms()

    def patient(check: Any) -> str:
        return pseudonym(check.patient_id) if settings.anonymize else check.patient_id

    def redactor(check: Check) -> Redactor:
        identity = SimpleNamespace(patient_id=check.patient_id, patient_name=check.patient_name, plan_date=check.plan_date,
                                   study_date=check.study_date)
        return Redactor(identity, settings.anonymize)  # type: ignore[arg-type]

    @app.context_processor
    def common() -> dict[str, Any]:
        return {"user": g.get("user"), "csrf_token": csrf_token(session), "csrf_field": CSRF_FIELD, "version": __version__,
                "anonymize": settings.anonymize, "words": STATUS_WORDS, "status_css": _STATUS_CSS, "patient": patient, "Role": Role}

    @app.before_request
    def guard() -> Any:
        g.user = None
        user_id = session.get("user_id")
        if isinstance(user_id, int):
            with store.session() as db:
                user = db.get(User, user_id)
            if user is not None and user.active:
                g.user = user
            else:
                session.clear()
        if request.method == "POST" and not tokens_match(session.get(CSRF_FIELD), request.form.get(CSRF_FIELD)):
            LOG.warning("refused: CSRF token missing or wrong, %s %s", request.method, request.path)
            abort(400, "CSRF token missing or wrong: reload the page and try again")
        if g.user is None and request.endpoint not in _PUBLIC:
            if request.method == "GET":
                return redirect(url_for("login", next=request.path))
            abort(401)
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def require(*roles: Role) -> None:
        if g.user is None or g.user.role not in {r.value for r in roles}:
            abort(403, "your account may not do this")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        error, status = "", 200
        if request.method == "POST":
            username = request.form.get("username", "")[:64]
            address = request.remote_addr or ""
            wait = settings.throttle.wait_s(address, username)
            if wait > 0:
                LOG.warning("login refused: too many failures (user %s, address %s)", username, address)
                error, status = f"Too many failed logins: try again in {int(wait) + 1} s.", 429
            else:
                user = authenticate(store, username, request.form.get("password", ""))
                if user is None:
                    settings.throttle.failed(address, username)
                    LOG.info("login failed (user %s, address %s)", username, address)
                    error, status = "Wrong user name or password, or the account is disabled.", 401
                else:
                    settings.throttle.succeeded(username)
                    session.clear()  # a new session at login: no fixation
                    session["user_id"] = user.id
                    session.permanent = True
                    LOG.info("login (user %s)", user.username)
                    target = request.args.get("next", "")
                    return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("plans"))
        return render_template("login.html", error=error), status

    @app.post("/logout")
    def logout() -> Any:
        session.clear()
        return redirect(url_for("login"))

    @app.get("/")
    def plans() -> Any:
        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(request.args.get(name, ""))
            except ValueError:
                return None

        wanted_patient = request.args.get("patient", "").strip()
        where = queries.CheckFilter(
            protocol=request.args.get("protocol", ""), arm=request.args.get("arm", ""), verdict=request.args.get("verdict", ""),
            patient="" if settings.anonymize else wanted_patient, date_from=day("from"), date_to=day("to"),
        )
        rows = queries.list_checks(store, where)
        if settings.anonymize and wanted_patient:
            rows = [r for r in rows if pseudonym(r.patient_id) == wanted_patient]
        return render_template("plans.html", rows=rows, choices=queries.filter_choices(store), args=request.args,
                               refresh_s=settings.refresh_s)

    def check_or_404(check_id: int) -> Check:
        check = queries.load_check(store, check_id)
        if check is None:
            abort(404, f"no check {check_id}")
        return check

    def plan_page(check: Check, error: str = "", status: int = 200) -> Any:
        esc = redactor(check)
        document = json.loads(check.document)
        figures = []
        for curve in check.curves:
            title = esc.plain(curve.structure + (f" ({curve.roi_name})" if curve.roi_name and curve.roi_name != curve.structure else ""))
            figures.append((curve, stored_dvh_svg(title, curve, check.items, f"c{check.id}s{curve.position}")))
        return render_template(
            "plan.html", check=check, document=document, esc=esc, figures=figures, failing=signoff.failing_items(check),
            checked_at=as_utc(check.checked_at), error=error, can_sign=g.user.role in (Role.REVIEWER.value, Role.ADMIN.value),
            has_report=bool(check.report_html) and not settings.anonymize and Path(check.report_html).is_file(),
        ), status

    @app.get("/checks/<int:check_id>")
    def plan(check_id: int) -> Any:
        return plan_page(check_or_404(check_id))

    @app.post("/checks/<int:check_id>/sign-off")
    def sign(check_id: int) -> Any:
        require(Role.REVIEWER, Role.ADMIN)
        check = check_or_404(check_id)
        try:
            decision = Decision(request.form.get("decision", ""))
        except ValueError:
            return plan_page(check, "Choose accept or reject.", 400)
        reasons = {}
        for name, value in request.form.items():
            if name.startswith("reason-") and name[7:].isdigit():
                reasons[int(name[7:])] = value
        try:
            signoff.sign_off(store, check.id, g.user.id, decision, request.form.get("comment", ""), reasons)
        except StoreError as exc:
            return plan_page(check, str(exc), 400)
        LOG.info("sign-off (user %s, check %d, %s)", g.user.username, check.id, decision.value)
        return redirect(url_for("plan", check_id=check.id))

    @app.get("/checks/<int:check_id>/report")
    def report(check_id: int) -> Any:
        check = check_or_404(check_id)
        if settings.anonymize or not check.report_html or not Path(check.report_html).is_file():
            abort(404, "no HTML report for this check" + (" (withheld: the dashboard is anonymized)" if settings.anonymize else ""))
        return send_file(check.report_html, mimetype="text/html")

    @app.get("/protocols/<protocol_id>/<arm>")
    def protocol(protocol_id: str, arm: str) -> Any:
        check_id = request.args.get("check", type=int)
        stats = cohort.criteria(store, protocol_id, arm, check_id=check_id)
        if not stats:
            abort(404, f"no stored check of protocol {protocol_id} arm {arm}")
        return render_template("protocol.html", protocol_id=protocol_id, arm=arm, stats=stats, check_id=check_id,
                               statuses=list(STATUS_WORDS), distribution=distribution_svg)

    @app.get("/trend/<protocol_id>/<arm>")
    def trend(protocol_id: str, arm: str) -> Any:
        stats = cohort.criteria(store, protocol_id, arm)
        numeric = [s.criterion for s in stats if s.values]
        if not numeric:
            abort(404, f"no value stored for protocol {protocol_id} arm {arm}")
        criterion = request.args.get("criterion", "")
        criterion = criterion if criterion in numeric else numeric[0]
        series = cohort.trend(store, protocol_id, arm, criterion)
        return render_template("trend.html", protocol_id=protocol_id, arm=arm, criteria=numeric, series=series,
                               svg=trend_svg(series, dates=not settings.anonymize))

    @app.get("/audit.<fmt>")
    def audit(fmt: str) -> Any:
        rows = signoff.audit_rows(store, pseudonym=pseudonym if settings.anonymize else None)
        if fmt == "csv":
            return Response(signoff.audit_csv(rows), mimetype="text/csv",
                            headers={"Content-Disposition": "attachment; filename=rtcheck-audit.csv"})
        if fmt == "json":
            return Response(signoff.audit_json(rows), mimetype="application/json")
        abort(404)

    @app.get("/users")
    def users() -> Any:
        require(Role.ADMIN)
        return render_template("users.html", accounts=list_users(store))

    @app.errorhandler(400)
    @app.errorhandler(401)
    @app.errorhandler(403)
    @app.errorhandler(404)
    def refused(error: Any) -> Any:
        return render_template("error.html", error=error), error.code

    return app
