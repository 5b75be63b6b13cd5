"""Two workers sweeping the same lab at once process each due item once; a
broker that is down breaks no page and loses no action."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q

from cssm_portal.models import CssmAlert
from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import AlertRecipient, Appliance, Product
from licensing_core.clock import lab_now
from licensing_core.models import MailMessage
from licensing_core.roles import GatewayRole
from licensing_core.sweeps import lab_sweep
from tests.time.support import broker_use, free_port


def make_enabled_appliances(lab, n: int) -> list[Appliance]:
    """n hardware gateways with Smart Licensing enabled (evaluation running) and an alert recipient."""
    out = []
    for i in range(n):
        esa = Appliance.objects.create(
            lab=lab, hostname=f"esa-{i:03d}.example.com", product=Product.ESA, model_pid="C395", serial=f"SN{i:05d}"
        )
        now = appliance_now(esa)
        services.sl_enable(appliance=esa, user=None, now=now)
        services.changes_commit(appliance=esa, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
        AlertRecipient.objects.create(appliance=esa, address=f"ops{i}@example.com", classes={"System": ["Warning"]})
        out.append(esa)
    return out


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_sweeping_the_same_lab_at_once_fire_each_notice_once(frozen_lab, settings):
    settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
    appliances = make_enabled_appliances(frozen_lab, 30)
    at = lab_now(frozen_lab) + timedelta(days=31)  # the "60 days left" notice is due on each
    counts, errors = [], []
    barrier = threading.Barrier(2)

    def worker():
        try:
            barrier.wait()
            counts.append(lab_sweep(lab=frozen_lab, now=at))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Each appliance had one due item at that instant (the latest overdue notice),
    # and the CSSM had its alert changes: together the workers did each once.
    cssm_changes = (
        CssmAlert.objects.filter(smart_account__lab=frozen_lab).filter(Q(raised_at=at) | Q(cleared_at=at)).count()
    )
    assert sum(counts) == len(appliances) + cssm_changes
    open_alerts = CssmAlert.objects.filter(smart_account__lab=frozen_lab, cleared_at__isnull=True)
    open_keys = list(open_alerts.values_list("dedupe_key", flat=True))
    assert len(open_keys) == len(set(open_keys))
    for esa in appliances:
        texts = list(esa.alerts.filter(kind="eval_expiry").values_list("text", flat=True))
        assert texts == [
            "The evaluation period expires in 60 day(s). Register the product with Smart Software Manager."
        ]
    warning_mails = MailMessage.objects.filter(lab=frozen_lab, subject__contains="60 day(s)")
    assert warning_mails.count() == len(appliances)
    assert len({tuple(m.recipients) for m in warning_mails}) == len(appliances)
    assert not Appliance.objects.filter(sweep_claimed_until__isnull=False).exists()  # all claims released


@pytest.mark.django_db(transaction=True)
def test_a_claim_left_by_a_killed_worker_holds_the_item_until_its_lease_runs_out(frozen_lab, settings):
    from gateway_ui.sweeps import gateway_process
    from licensing_core.clock import wall_now

    settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
    (esa,) = make_enabled_appliances(frozen_lab, 1)
    at = lab_now(frozen_lab) + timedelta(days=31)
    # A worker claimed it, then died: the lease is still running.
    Appliance.objects.filter(pk=esa.pk).update(sweep_claimed_until=wall_now() + timedelta(minutes=5))
    assert gateway_process(frozen_lab, at) == 0
    assert not esa.alerts.filter(text__contains="60 day(s)").exists()
    # The lease ran out: the next sweep takes it over and fires it once.
    Appliance.objects.filter(pk=esa.pk).update(sweep_claimed_until=wall_now() - timedelta(seconds=1))
    assert gateway_process(frozen_lab, at) == 1
    assert gateway_process(frozen_lab, at) == 0
    assert esa.alerts.filter(text__contains="60 day(s)").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_redone_occurrence_raises_no_second_alert_or_mail(frozen_lab, settings):
    """A worker killed after raising an alert but before moving the timer on:
    the next one fires the same Due again, and its key stops a second alert."""
    settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
    (esa,) = make_enabled_appliances(frozen_lab, 1)
    now = appliance_now(esa)
    first = services.alert_raise(esa, kind="eval_expiry", now=now, days_left=90, dedupe_key="eval_notice:90")
    again = services.alert_raise(esa, kind="eval_expiry", now=now, days_left=90, dedupe_key="eval_notice:90")
    assert first is not None
    assert again is None
    assert esa.alerts.filter(dedupe_key="eval_notice:90").count() == 1
    assert MailMessage.objects.filter(subject__contains="90 day(s)").count() == 1


@pytest.fixture
def dead_broker(settings, monkeypatch):
    """Celery pointed at a Redis port nothing listens on; tasks not eager."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    undo = broker_use(url, monkeypatch)
    yield url
    undo()


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_page_answers_and_the_action_runs_once_it_is_back(
    frozen_lab, client, dead_broker, settings
):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from config.celery import app
    from gateway_ui.tasks import exchanges_recover_task
    from licensing_core.models import JobRun

    esa = Appliance.objects.get(lab=frozen_lab, hostname="esa1.example.com")
    now = appliance_now(esa)
    services.sl_enable(appliance=esa, user=None, now=now)
    services.changes_commit(appliance=esa, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    Appliance.objects.filter(pk=esa.pk).update(agent_version="1.0.0")  # an update is available
    client.force_login(get_user_model().objects.get(username="admin"))

    response = client.post(reverse("gateway:sl_agent_update", args=[frozen_lab.slug, esa.hostname]))
    assert response.status_code == 302  # not a 500: the broker being down is not the user's problem
    esa.refresh_from_db()
    assert esa.agent_update_state == "updating"  # recorded, waiting
    assert esa.exchange_requested_at is not None

    # Nothing happens before the recovery interval ...
    settings.LAB_EXCHANGE_RECOVERY_SECONDS = 3600
    app.conf.task_always_eager = True  # the broker is back; beat runs the recovery task
    assert exchanges_recover_task() == 0
    # ... and once it has passed, the recorded action is carried out, once.
    settings.LAB_EXCHANGE_RECOVERY_SECONDS = 0
    assert exchanges_recover_task() == 1
    esa.refresh_from_db()
    assert esa.agent_update_state == "updated" or esa.agent_version == settings.SMART_AGENT_VERSION
    assert esa.exchange_requested_at is None
    assert exchanges_recover_task() == 0
    run = JobRun.objects.get(kind="agent_update")
    assert (run.trigger, run.status, run.subject_id) == ("beat", "succeeded", esa.pk)
