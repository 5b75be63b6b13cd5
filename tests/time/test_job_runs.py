"""Every background run leaves a JobRun (what, why, how it ended); the lab page shows the last and the next."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse

from licensing_core.models import JobRun
from licensing_core.sweeps import lab_advance_by
from licensing_core.tasks import sweep_labs_task


@pytest.mark.django_db
def test_time_travel_beat_and_gui_runs_are_recorded_and_shown(
    frozen_lab, client, django_user_model, django_capture_on_commit_callbacks
):
    from gateway_ui import services
    from gateway_ui.clock import appliance_now
    from gateway_ui.models import Appliance
    from licensing_core.roles import GatewayRole

    esa = Appliance.objects.get(lab=frozen_lab, hostname="esa1.example.com")
    now = appliance_now(esa)
    services.sl_enable(appliance=esa, user=None, now=now)
    services.changes_commit(appliance=esa, user=None, role=GatewayRole.ADMINISTRATOR, now=now)

    lab_advance_by(lab=frozen_lab, by=timedelta(days=2))
    call_command("advance_clock", lab=frozen_lab.slug, days=1, stdout=open("/dev/null", "w"))  # noqa: SIM115
    sweep_labs_task.delay()
    runs = list(JobRun.objects.filter(lab=frozen_lab).order_by("id").values_list("kind", "trigger", "status"))
    assert runs[:2] == [("time_travel", "time_travel", "succeeded"), ("time_travel", "time_travel", "succeeded")]
    assert runs[2] == ("sweep", "beat", "succeeded")

    client.force_login(django_user_model.objects.get(username="admin"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("gateway:sl_agent_update", args=[frozen_lab.slug, esa.hostname]))
    assert JobRun.objects.filter(kind="agent_update", trigger="gui", subject_id=esa.pk, status="succeeded").exists()
    page = client.get(reverse("labs:detail", args=[frozen_lab.slug])).content.decode()
    assert "Background work" in page
    assert "Celery beat, succeeded" in page
    esa.refresh_from_db()
    # The next item due is esa1's "60 days left" evaluation notice, 30 days after it started.
    assert f"{esa.eval_running_since + timedelta(days=30):%d %b %Y %H:%M} UTC" in page
