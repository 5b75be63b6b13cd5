"""gateway_ui.bulk and the bulk alert e-mail: what the services write under
writes_deferred (flushed at once) is what they write one call at a time,
in a number of queries that does not grow with the rows."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from gateway_ui import services
from gateway_ui.bulk import MAX_VALUE_GROUPS, save_changes, writes_deferred
from gateway_ui.clock import appliance_now
from gateway_ui.models import AlertMailState, AlertRecipient, Appliance, ApplianceAlert, Product
from licensing_core.bulk import update_returning, update_returning_pks
from licensing_core.mail import MailDraft, mail_enqueue, mail_enqueue_many
from licensing_core.models import Event, MailMessage

pytestmark = pytest.mark.django_db

START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def watched(enabled, settings):
    """The enabled appliance with three recipients and short duplicate waits (5 s, at most 75 s)."""
    settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
    Appliance.objects.filter(pk=enabled.pk).update(alert_duplicate_initial_seconds=5, alert_duplicate_max_seconds=75)
    enabled.refresh_from_db()
    AlertRecipient.objects.create(appliance=enabled, address="crit@example.com", classes={"System": ["Critical"]})
    AlertRecipient.objects.create(
        appliance=enabled, address="all@example.com", classes={"System": ["Critical", "Warning", "Information"]}
    )
    AlertRecipient.objects.create(appliance=enabled, address="hw@example.com", classes={"Hardware": ["Warning"]})
    return enabled


def _raise_series(appliance, start, seconds: int) -> None:
    """A day of alerts as timers and exchanges raise them: a failure repeated
    every second (duplicate suppression), keyed occurrences (one raised
    twice), and alerts nobody is subscribed to at their severity."""
    for s in range(seconds):
        services.alert_raise(appliance, kind="authorization_failed", now=start + timedelta(seconds=s), reason="down")
    at = start + timedelta(seconds=seconds)
    services.alert_raise(appliance, kind="auth_expired", now=at, dedupe_key="auth_expiry:1")
    services.alert_raise(appliance, kind="auth_expired", now=at, dedupe_key="auth_expiry:1")
    services.alert_raise(appliance, kind="eval_expiry", now=at, days_left=30, dedupe_key="eval_notice:30")
    services.alert_raise(appliance, kind="authorized", now=at)
    services.alert_raise(appliance, kind="authorization_failed", now=at + timedelta(seconds=200), reason="down")
    services._event(appliance, now=at, kind="test.event", message="written with the alerts")


def _written(appliance, since_alert: int, since_mail: int, since_event: int) -> dict:
    alerts = list(appliance.alerts.filter(pk__gt=since_alert).order_by("id"))
    index = {a.pk: i for i, a in enumerate(alerts)}
    mails = MailMessage.objects.filter(pk__gt=since_mail).order_by("id")
    return {
        "alerts": [(a.kind, a.severity, a.text, a.at, a.dedupe_key, a.emailed) for a in alerts],
        "states": sorted(
            AlertMailState.objects.filter(appliance=appliance).values_list(
                "fingerprint", "last_sent_at", "wait_seconds", "suppressed"
            )
        ),
        # A keyless alert's e-mail is keyed by the alert's id: compare its place instead.
        "mails": [
            (
                m.recipients,
                m.sender,
                m.subject,
                m.body_text,
                m.lab_time,
                m.status,
                _by_place(m.dedupe_key, index),
            )
            for m in mails
        ],
        "events": list(
            Event.objects.filter(pk__gt=since_event, appliance_id=appliance.pk).values_list("kind", "message", "at")
        ),
    }


def _by_place(key: str, index: dict[int, int]) -> str:
    head, _, tail = key.rpartition(":")
    return f"{head}:#{index[int(tail[5:])]}" if tail.startswith("alert") else key


def _marks():
    last = lambda model: model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0  # noqa: E731
    return last(ApplianceAlert), last(MailMessage), last(Event)


def test_deferred_alerts_mail_and_events_are_the_rows_written_one_by_one(watched):
    start = appliance_now(watched)
    with transaction.atomic():
        marks = _marks()
        _raise_series(watched, start, 60)
        one_by_one = _written(watched, *marks)
        transaction.set_rollback(True)
    with transaction.atomic():
        marks = _marks()
        appliance = Appliance.objects.select_related("lab").get(pk=watched.pk)
        with writes_deferred([appliance]) as writes:
            _raise_series(appliance, start, 60)
            assert not appliance.alerts.filter(pk__gt=marks[0]).exists()  # nothing written yet
            writes.flush()
        deferred = _written(appliance, *marks)
    assert deferred == one_by_one
    assert len(one_by_one["alerts"]) == 64  # the repeated keyed alert is raised once
    emailed = [a for a in one_by_one["alerts"] if a[5]]
    assert [a[3] - start for a in emailed][:5] == [timedelta(seconds=s) for s in (0, 5, 20, 55, 60)]
    assert one_by_one["mails"][0][0] == ["all@example.com"]  # Warning: one subscriber
    assert ["all@example.com", "crit@example.com"] in [m[0] for m in one_by_one["mails"]]  # Critical: both


def test_a_redone_flush_raises_no_keyed_alert_twice(watched):
    at = appliance_now(watched)
    services.alert_raise(watched, kind="auth_expired", now=at, dedupe_key="auth_expiry:1")
    appliance = Appliance.objects.select_related("lab").get(pk=watched.pk)
    with writes_deferred([appliance]) as writes:
        services.alert_raise(appliance, kind="auth_expired", now=at, dedupe_key="auth_expiry:1")
        services.alert_raise(appliance, kind="eval_expiry", now=at, days_left=5, dedupe_key="eval_notice:5")
        writes.flush()
    assert list(watched.alerts.exclude(dedupe_key=None).order_by("id").values_list("dedupe_key", flat=True)) == [
        "auth_expiry:1",
        "eval_notice:5",
    ]
    assert MailMessage.objects.filter(dedupe_key=f"gateway-alert:{watched.pk}:auth_expiry:1").count() == 1


def test_a_flush_runs_the_same_queries_for_3_or_30_appliances(demo_lab, settings):
    settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"

    def flush_for(n: int) -> int:
        apps = []
        for i in range(n):
            a = Appliance.objects.create(
                lab=demo_lab, hostname=f"q{n}-{i}.example.com", product=Product.ESA, model_pid="C395", serial=f"Q{n}{i}"
            )
            AlertRecipient.objects.create(appliance=a, address="ops@example.com", classes={"System": ["Warning"]})
            apps.append(a)
        now = appliance_now(apps[0])
        with CaptureQueriesContext(connection) as ctx, writes_deferred(apps) as writes:
            for a in apps:
                a.eval_notices_sent_through = 30
                services._save(a)
                services._event(a, now=now, kind="eval.notice", message="30 days left")
                services.alert_raise(a, kind="eval_expiry", now=now, days_left=30, dedupe_key="eval_notice:30")
            writes.flush()
        assert MailMessage.objects.filter(recipients=["ops@example.com"], lab_time__isnull=False).count() >= n
        assert Appliance.objects.filter(pk__in=[a.pk for a in apps], eval_notices_sent_through=30).count() == n
        return len(ctx.captured_queries)

    assert flush_for(3) == flush_for(30)


def test_mail_enqueue_many_queues_what_mail_enqueue_would(demo_lab):
    def draft(key, recipients=("a@example.com",)):
        return MailDraft(
            lab=demo_lab,
            lab_time=None,
            template="gateway-alert",
            context={
                "severity": "Warning",
                "hostname": "h",
                "alert_class": "System",
                "text": key,
                "version": "1",
                "serial": "S",
                "timestamp": None,
            },  # fmt: skip
            recipients=list(recipients),
            dedupe_key=key,
        )

    single = mail_enqueue(**{f: getattr(draft("k0"), f) for f in draft("k0").__dataclass_fields__})
    with CaptureQueriesContext(connection) as ctx:
        out = mail_enqueue_many([draft("k0"), draft("k1"), draft("k2", recipients=()), draft("k1"), draft("k3")])
    assert len(ctx.captured_queries) == 2
    assert [m is not None for m in out] == [False, True, False, False, True]
    k1 = MailMessage.objects.get(dedupe_key="k1")
    assert (k1.subject, k1.body_text, k1.body_html, k1.recipients, k1.sender) == (
        single.subject.replace("k0", "k1"),
        single.body_text.replace("k0", "k1"),
        single.body_html.replace("k0", "k1"),
        single.recipients,
        single.sender,
    )


def test_update_returning_pks_returns_only_the_rows_it_changed(demo_lab):
    ids = list(Appliance.objects.filter(lab=demo_lab).values_list("pk", flat=True))
    Appliance.objects.filter(pk=ids[0]).update(clock_skew_minutes=7)
    won = update_returning_pks(Appliance.objects.filter(pk__in=ids, clock_skew_minutes=0), clock_skew_minutes=3)
    assert sorted(won) == sorted(ids[1:])
    assert set(Appliance.objects.filter(pk__in=ids).values_list("clock_skew_minutes", flat=True)) == {7, 3}
    assert update_returning_pks(Appliance.objects.filter(pk__in=ids, clock_skew_minutes=0), clock_skew_minutes=1) == []


def test_update_returning_reads_what_it_claimed_as_a_select_would(demo_lab):
    ids = list(Appliance.objects.filter(lab=demo_lab).order_by("pk").values_list("pk", flat=True))
    Appliance.objects.filter(pk=ids[0]).update(clock_skew_minutes=7)
    Appliance.objects.filter(pk=ids[1]).update(
        last_auth_ok=False, classic_feature_keys=["VOF"], eval_remaining=timedelta(days=3, seconds=5)
    )
    fields = ("lab", "clock_skew_minutes", "last_auth_ok", "classic_feature_keys", "eval_remaining", "next_due_at")
    with CaptureQueriesContext(connection) as ctx:
        got = update_returning(
            Appliance.objects.filter(pk__in=ids, clock_skew_minutes=0), fields=fields, sweep_claimed_until=START
        )
    assert len(ctx.captured_queries) == 1
    assert sorted(a.pk for a in got) == ids[1:]
    want = {a.pk: a for a in Appliance.objects.filter(pk__in=ids[1:]).only(*fields)}
    for a in got:
        assert a.get_deferred_fields() == want[a.pk].get_deferred_fields()
        for name in ("lab_id", "clock_skew_minutes", "last_auth_ok", "classic_feature_keys", "eval_remaining"):
            assert getattr(a, name) == getattr(want[a.pk], name), name
            assert type(getattr(a, name)) is type(getattr(want[a.pk], name)), name
        assert a.next_due_at == want[a.pk].next_due_at
        assert a._state.adding is False
    claimed = {a.pk: a for a in update_returning(Appliance.objects.filter(pk=ids[1]), fields=("sweep_claimed_until",))}
    assert claimed == {}  # nothing to set: nothing claimed
    again = update_returning(Appliance.objects.filter(pk=ids[1]), fields=("sweep_claimed_until",), clock_skew_minutes=2)
    assert [(a.pk, a.sweep_claimed_until) for a in again] == [(ids[1], START)]  # values as the update left them


def test_save_changes_groups_equal_values_and_writes_each_objects_own(demo_lab):
    apps = [
        Appliance.objects.create(
            lab=demo_lab, hostname=f"g{i}.example.com", product=Product.ESA, model_pid="C395", serial=f"G{i}"
        )
        for i in range(MAX_VALUE_GROUPS + 3)
    ]
    with CaptureQueriesContext(connection) as ctx:
        save_changes(Appliance, [(a, {"clock_skew_minutes": 5, "serial": "same"}) for a in apps])
    assert len(ctx.captured_queries) == 1
    stored = Appliance.objects.filter(pk__in=[a.pk for a in apps]).order_by("pk")
    assert set(stored.values_list("clock_skew_minutes", "serial")) == {(5, "same")}

    def values(i):  # every kind of column a sweep writes, NULL among them
        at = START + timedelta(minutes=i)
        return {
            "clock_skew_minutes": i,
            "last_auth_ok": None if i == 0 else i % 2 == 0,
            "next_due_at": None if i == 1 else at,
            "last_auth_reason": f"reason {i}",
            "eval_remaining": timedelta(days=i),
            "classic_feature_keys": ["VOF"] * i,
        }

    with CaptureQueriesContext(connection) as ctx:
        save_changes(Appliance, [(a, values(i)) for i, a in enumerate(apps)])
    assert len(ctx.captured_queries) == 1  # more distinct values than groups: one UPDATE from a VALUES list
    for i, a in enumerate(stored):
        assert {k: getattr(a, k) for k in values(i)} == values(i)
