"""The admin pages with real rows (Django's test client): 200s, resubmit, requeue, schedule forms."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.test import Client as WebClient
from django.test import override_settings

from qframe.cluster.stat import Stat, config_keys, status_codec
from qframe_django import compat
from qframe_django.conf import project_config, reset
from qframe_django.models import DeadLetter, Failure, QueuedMessage, Schedule, Success
from qframe_django.store import OrmStore

pytestmark = [pytest.mark.timeout(60), pytest.mark.django_db(transaction=True)]

Q2 = {"name": "admin", "orm": "default", "retry": 30, "timeout": 20, "workers": 1}


@pytest.fixture
def project() -> Iterator[None]:
    with override_settings(Q_CLUSTER=Q2):
        reset()
        yield
    reset()


@pytest.fixture
def rows(project: None) -> dict[str, str]:
    """One row of each kind, made the way clusters make them."""
    ids = {"success": compat.async_task("djtest_app.tasks.add", 20, 22, task_name="answer", sync=True)}
    with pytest.raises(ValueError):
        compat.async_task("djtest_app.tasks.fail", "kaput", task_name="broken", sync=True)
    ids["failure"] = Failure.objects.get().id
    ids["queued"] = compat.async_task("djtest_app.tasks.add", 1, 2, task_name="waiting")
    compat.schedule("djtest_app.tasks.add", 3, 4, name="nightly-report", schedule_type="D")
    store = OrmStore("default")
    store.quarantine("admin", "m-dead", "bad signature", b"tampered", attempts=2, last_error="SignatureError")
    keys = config_keys(project_config())
    stat = Stat(uuid.uuid4().hex, "admin", "host-a", 4242, workers=[1, 2], status="Idle")
    store.set_status("admin:stat", stat.to_bytes(status_codec(keys)), ttl=60)
    ids["cluster"] = stat.label
    store.close()
    return ids


@pytest.fixture
def web(admin_client: WebClient) -> WebClient:
    return admin_client


@pytest.mark.parametrize(
    ("page", "shows"),
    [
        ("success", "answer"),
        ("failure", "ValueError: kaput"),
        ("schedule", "nightly-report"),
        ("queuedmessage", "djtest_app.tasks.add [waiting]"),
        ("deadletter", "bad signature"),
        ("clusterstatus", "host-a:4242"),
    ],
)
def test_every_admin_list_shows_its_real_rows(
    web: WebClient, rows: dict[str, str], page: str, shows: str
) -> None:
    response = web.get(f"/admin/qframe_django/{page}/")
    assert response.status_code == 200
    assert shows in response.content.decode()


def test_the_cluster_list_shows_the_clusters_four_word_name(web: WebClient, rows: dict[str, str]) -> None:
    assert rows["cluster"] in web.get("/admin/qframe_django/clusterstatus/").content.decode()


def test_detail_pages_show_decoded_arguments_and_results(web: WebClient, rows: dict[str, str]) -> None:
    page = web.get(f"/admin/qframe_django/success/{rows['success']}/change/").content.decode()
    assert "args=(20, 22)" in page and "42" in page


def test_resubmit_enqueues_the_failure_again_and_deletes_it(web: WebClient, rows: dict[str, str]) -> None:
    before = compat.queue_size()
    response = web.post(
        "/admin/qframe_django/failure/", {"action": "resubmit", "_selected_action": [rows["failure"]]}
    )
    assert response.status_code == 302
    assert not Failure.objects.exists()
    assert compat.queue_size() == before + 1
    names = [queued_task_label(row) for row in QueuedMessage.objects.order_by("id")]
    assert names[-1] == "djtest_app.tasks.fail [broken]"


def queued_task_label(row: QueuedMessage) -> str:
    from qframe_django.admin import QueuedMessageAdmin

    return QueuedMessageAdmin(QueuedMessage, None).task(row)  # type: ignore[arg-type]


def test_requeue_puts_a_dead_letter_back_on_its_queue(web: WebClient, rows: dict[str, str]) -> None:
    letter = DeadLetter.objects.get()
    web.post("/admin/qframe_django/deadletter/", {"action": "requeue", "_selected_action": [letter.pk]})
    assert not DeadLetter.objects.exists()
    assert bytes(QueuedMessage.objects.filter(queue="admin").order_by("-id").first().payload) == b"tampered"


def schedule_form(**changes: str) -> dict[str, str]:
    form = {
        "id": "weekday-mail", "func": "djtest_app.tasks.add", "schedule_type": "C", "cron": "0 22 * * 1-5",
        "timezone": "Europe/Amsterdam", "repeats": "-1", "args": "[1, 2]", "kwargs": "{}",
        "catch_up": "on", "enabled": "on",
    }  # fmt: skip
    return {**form, **changes}


def test_a_schedule_is_added_through_the_admin(web: WebClient, project: None) -> None:
    response = web.post("/admin/qframe_django/schedule/add/", schedule_form())
    assert response.status_code == 302, response.content.decode()[-2000:]
    from qframe_scheduler.record import Schedule as Record

    record = Record.loads(bytes(Schedule.objects.get(id="weekday-mail").data))
    assert (record.cron, record.timezone, record.args) == ("0 22 * * 1-5", "Europe/Amsterdam", (1, 2))


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"func": "djtest_app.tasks.nope"}, "nope"),
        ({"args": "[1,"}, "must be JSON"),
    ],
)
def test_a_bad_schedule_is_a_form_error(
    web: WebClient, project: None, changes: dict[str, str], error: str
) -> None:
    response = web.post("/admin/qframe_django/schedule/add/", schedule_form(**changes))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Schedule.objects.exists()


def test_a_schedule_is_edited_through_the_admin(web: WebClient, rows: dict[str, str]) -> None:
    url = "/admin/qframe_django/schedule/nightly-report/change/"
    assert web.get(url).status_code == 200
    response = web.post(url, schedule_form(id="nightly-report", cron="30 6 * * *"))
    assert response.status_code == 302
    from qframe_scheduler.record import Schedule as Record

    assert Record.loads(bytes(Schedule.objects.get(id="nightly-report").data)).cron == "30 6 * * *"
    assert Success.objects.count() == 1
