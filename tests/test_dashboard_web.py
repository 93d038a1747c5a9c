"""The dashboard's guards and pages through Flask's test client, on the sample plans' stored checks."""

import logging
import re

import pytest

from rtcheck.store import Origin, Role, open_store, record_check
from rtcheck.store.users import add_user, disable_user
from rtcheck.web import DashboardSettings, create_app
from rtcheck.web.security import LoginThrottle

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path, sample_checks):
    opened = open_store(str(tmp_path / "web.sqlite"))
    for _folder, _result, record in sample_checks:
        record_check(opened, record, Origin.BATCH)
    for name, role in (("rev", Role.REVIEWER), ("view", Role.VIEWER), ("admin", Role.ADMIN)):
        add_user(opened, name, PASSWORD, role)
    yield opened
    opened.close()


def token(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def log_in(client, name):
    response = client.post("/login", data={"csrf_token": token(client.get("/login")), "username": name, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


PAGES = ["/", "/checks/1", "/checks/1/report", "/protocols/escc-induction-icrt-ccrt/cr-pr", "/trend/escc-induction-icrt-ccrt/cr-pr",
         "/audit.csv", "/audit.json", "/users"]


def test_every_page_needs_a_login(store):
    client = create_app(store).test_client()
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), page
    response = client.get("/login")
    assert client.post("/checks/1/sign-off", data={"csrf_token": token(response), "decision": "rejected", "comment": "x"}).status_code == 401
    assert client.post("/logout", data={}).status_code == 400  # no CSRF token: refused before anything else


def test_session_cookie_is_httponly_samesite_and_renewed_at_login(store):
    client = create_app(store).test_client()
    before = token(client.get("/login"))
    cookie = log_in(client, "rev").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert token(client.get("/")) != before  # the session (and its CSRF token) is new after login
    secure = create_app(store, DashboardSettings(secure_cookies=True)).test_client()
    assert "Secure" in log_in(secure, "rev").headers["Set-Cookie"]


def test_forms_without_the_csrf_token_are_refused(store):
    client = create_app(store).test_client()
    log_in(client, "rev")
    page = client.get("/checks/1")
    for data in ({"decision": "rejected", "comment": "no"}, {"decision": "rejected", "comment": "no", "csrf_token": "forged"}):
        assert client.post("/checks/1/sign-off", data=data).status_code == 400
    assert "Not signed off yet" in client.get("/checks/1").get_data(as_text=True)
    assert client.post("/checks/1/sign-off", data={"decision": "rejected", "comment": "no", "csrf_token": token(page)}).status_code == 302


def test_a_viewer_reads_but_cannot_sign_off(store):
    client = create_app(store).test_client()
    log_in(client, "view")
    page = client.get("/checks/1")
    assert page.status_code == 200 and 'id="sign-off"' not in page.get_data(as_text=True)
    response = client.post("/checks/1/sign-off", data={"decision": "rejected", "comment": "no", "csrf_token": token(page)})
    assert response.status_code == 403
    assert client.get("/users").status_code == 403
    admin = create_app(store).test_client()
    log_in(admin, "admin")
    assert "view" in admin.get("/users").get_data(as_text=True)


def test_login_attempts_are_rate_limited(store):
    clock = [0.0]
    client = create_app(store, DashboardSettings(throttle=LoginThrottle(5, 300.0, clock=lambda: clock[0]))).test_client()
    csrf = token(client.get("/login"))
    for _ in range(5):
        assert client.post("/login", data={"csrf_token": csrf, "username": "rev", "password": "wrong"}).status_code == 401
    refused = client.post("/login", data={"csrf_token": csrf, "username": "rev", "password": PASSWORD})
    assert refused.status_code == 429 and "Too many failed logins" in refused.get_data(as_text=True)
    clock[0] = 301.0
    assert client.post("/login", data={"csrf_token": csrf, "username": "rev", "password": PASSWORD}).status_code == 302


def test_a_disabled_account_is_logged_out(store):
    client = create_app(store).test_client()
    log_in(client, "rev")
    assert client.get("/").status_code == 200
    disable_user(store, "rev")
    assert client.get("/").status_code == 302


def test_pages_show_the_check_and_logs_hold_no_patient_name(store, sample_checks, caplog):
    caplog.set_level(logging.DEBUG)
    client = create_app(store).test_client()
    log_in(client, "rev")
    listing = client.get("/?verdict=deviation_unacceptable&arm=cr-pr").get_data(as_text=True)
    assert listing.count("/checks/") == 2 and 'http-equiv="refresh"' in listing
    assert client.get("/?patient=RTCHECK-001").get_data(as_text=True).count("/checks/") == 1
    plan = client.get("/checks/1").get_data(as_text=True)
    result = sample_checks[0][1]
    assert result.patient_name in plan and plan.count("<svg") == len(result.dvhs_by_structure)
    protocol = client.get("/protocols/escc-induction-icrt-ccrt/cr-pr?check=1").get_data(as_text=True)
    assert "lungs-v20" in protocol and "percentile" in protocol
    assert "upper limit" in client.get("/trend/escc-induction-icrt-ccrt/cr-pr?criterion=lungs-v20").get_data(as_text=True)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "rtcheck^sample" not in messages.lower() and "login (user rev)" in messages


def test_anonymized_dashboard_shows_pseudonyms(store, sample_checks):
    client = create_app(store, DashboardSettings(anonymize=True)).test_client()
    log_in(client, "rev")
    listing = client.get("/").get_data(as_text=True)
    result = sample_checks[0][1]
    assert result.patient_id not in listing and "patient-" in listing
    pseudonym = re.search(r"patient-[0-9a-f]{10}", listing).group(0)
    assert client.get(f"/?patient={pseudonym}").get_data(as_text=True).count("/checks/") >= 1
    plan = client.get("/checks/1").get_data(as_text=True)
    assert result.patient_id not in plan and result.patient_name not in plan and "withheld (anonymized)" in plan
    assert result.input_files[0] not in plan
    assert result.patient_id not in client.get("/audit.csv").get_data(as_text=True)
