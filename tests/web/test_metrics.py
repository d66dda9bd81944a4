"""The operators' metrics endpoint: absent without its token, the route classes, the
queue and backup gauges, and sample alert rules that name only what it exposes."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.test import RequestFactory, override_settings
from django.utils import timezone

from tests.conftest import HTTPSClient
from vouch.backups.models import BackupSet, BackupStatus, Scope
from vouch.core.metrics import route_class
from vouch.web import metric_collectors

pytestmark = pytest.mark.django_db
TOKEN = "t" * 8 + "0123456789abcdefghijklmnopqrstuv"
RULES = Path(__file__).resolve().parents[2] / "docs" / "operations" / "metrics-alerts.yml"


def scrape(client: HTTPSClient | None = None, token: str = TOKEN):
    client = client or HTTPSClient()
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")


def exposed_names(text: str) -> set[str]:
    """Every series name the exposition has or would have (a labelled counter not yet used
    has its HELP and TYPE lines but no sample)."""
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )", text, flags=re.MULTILINE))
    for name, kind in re.findall(r"^# TYPE (\S+) (\w+)$", text, flags=re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def test_without_a_token_configured_it_is_a_404():
    with override_settings(VOUCH_METRICS_TOKEN=""):
        assert scrape().status_code == 404
        assert scrape(token="").status_code == 404


@override_settings(VOUCH_METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize(
    "header", [None, "", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"bearer  {TOKEN}"]
)
def test_a_wrong_or_missing_token_is_the_same_404(header):
    client = HTTPSClient()
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get("/metrics", **extra)
    assert response.status_code == 404
    assert b"vouch_" not in response.content


@override_settings(VOUCH_METRICS_TOKEN=TOKEN)
def test_the_operator_gets_the_metrics():
    client = HTTPSClient()
    client.get("/livez")
    client.get("/accounts/login/")
    response = scrape(client)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    assert re.search(r'^vouch_requests_total\{route_class="probe",status="2xx"\} [1-9]', text, re.MULTILINE)
    assert re.search(r'^vouch_request_seconds_count\{route_class="sign_in"\} [1-9]', text, re.MULTILINE)
    assert "vouch_task_queue_depth 0.0" in text
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code in (403, 405)


@pytest.mark.parametrize(
    ("method", "path", "extra", "expected"),
    [
        ("GET", "/static/web/app.css", {}, "static"),
        ("GET", "/livez", {}, "probe"),
        ("GET", "/healthz", {}, "probe"),
        ("GET", "/metrics", {}, "probe"),
        ("POST", "/accounts/login/", {}, "sign_in"),
        ("GET", "/accounts/verify-sign-in/", {}, "sign_in"),
        ("POST", "/accounts/password/reset/", {}, "sign_in"),
        ("GET", "/c/sometoken/", {}, "link"),
        ("GET", "/r/sometoken/answers/", {}, "link"),
        ("POST", "/c/sometoken/", {"CONTENT_TYPE": "multipart/form-data; boundary=x"}, "upload"),
        ("POST", "/candidates/1/attachments/", {"CONTENT_TYPE": "multipart/form-data; boundary=x"}, "upload"),
        ("GET", "/requests/5d2c/report.pdf", {}, "pdf"),
        ("GET", "/requests/", {"QUERY_STRING": "q=casey"}, "search"),
        ("GET", "/", {"QUERY_STRING": "q=casey"}, "page"),  # no search there
        ("GET", "/requests/", {"QUERY_STRING": "q=+"}, "page"),
        ("GET", "/candidates/", {"QUERY_STRING": "status=open&q=casey"}, "search"),
        ("GET", "/candidates/", {"QUERY_STRING": "sq=1"}, "page"),
        ("GET", "/members/", {}, "page"),
    ],
)
def test_route_classes(method, path, extra, expected):
    request = RequestFactory().generic(method, path, **extra)
    assert route_class(request) == expected


def test_the_database_queue_depth_and_age(monkeypatch):
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult, get_date_max

    monkeypatch.setitem(
        metric_collectors.settings.TASKS, "default", {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}
    )
    assert metric_collectors._queue() == (0, 0.0)
    now = timezone.now()

    def task(**fields):
        row = DBTaskResult.objects.create(
            task_path="vouch.references.jobs.remind_candidate",
            args_kwargs={"args": [], "kwargs": {}},
            backend_name="default",
            queue_name="default",
            status=fields.pop("status", TaskResultStatus.READY),
            run_after=fields.pop("run_after", get_date_max()),
            exception_class_path="",
            traceback="",
        )
        DBTaskResult.objects.filter(pk=row.pk).update(**fields)

    task(enqueued_at=now - timedelta(seconds=120))
    task(enqueued_at=now - timedelta(hours=3), run_after=now - timedelta(seconds=600))  # due for 10 minutes
    task(enqueued_at=now - timedelta(hours=5), run_after=now + timedelta(hours=1))  # not due: not waiting
    task(enqueued_at=now - timedelta(days=1), status=TaskResultStatus.SUCCESSFUL)  # done
    depth, age = metric_collectors._queue()
    assert depth == 2 and 600 <= age < 660


def test_backup_ages():
    from tests.accounts.helpers import fast_company

    company = fast_company()
    now = timezone.now()
    assert metric_collectors._backups() == {}
    BackupSet.objects.create(scope=Scope.CONTROL, taken_at=now - timedelta(minutes=30), status=BackupStatus.COMPLETE)
    BackupSet.objects.create(scope=Scope.CONTROL, taken_at=now - timedelta(minutes=5), status=BackupStatus.PENDING)
    BackupSet.objects.create(
        scope=Scope.COMPANY, company_id=company.pk, taken_at=now - timedelta(hours=3), status=BackupStatus.COMPLETE
    )
    BackupSet.objects.create(
        scope=Scope.COMPANY, company_id=company.pk, taken_at=now - timedelta(hours=1), status=BackupStatus.COMPLETE
    )
    ages = metric_collectors._backups()
    assert 1790 < ages["control"] < 1900 and 3590 < ages["company"] < 3700


@override_settings(VOUCH_METRICS_TOKEN=TOKEN)
def test_the_sample_alert_rules_parse_and_name_only_exposed_metrics():
    rules = yaml.safe_load(RULES.read_text())
    exposed = exposed_names(scrape().content.decode())
    named = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert {"alert", "expr", "annotations"} <= set(rule), rule
            named |= set(re.findall(r"\bvouch_[a-z_]+\b", rule["expr"]))
    assert named and named <= exposed, named - exposed
    # Every metric the endpoint exposes has at least one sample rule.
    text = scrape().content.decode()
    families = {
        name for name in re.findall(r"^# TYPE (vouch_\S+) ", text, flags=re.MULTILINE) if not name.endswith("_created")
    }
    covered = {re.sub(r"_(bucket|sum|count)$", "", name) for name in named}
    assert families <= covered, families - covered
