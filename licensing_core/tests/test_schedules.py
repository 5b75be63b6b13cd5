"""Timers: the guide's numbers, each notice day pinned, and a simulated scheduler."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensing_core import schedules as s
from licensing_core.machines import ConversionState, RegistrationState, ReservationState
from licensing_core.schedules import (
    Due,
    EvalClock,
    TimerInputs,
    current_expiry_warning,
    due_now,
    eval_should_run,
    instance_connect_status,
    license_expiry_warnings,
    next_due,
    notice_times,
    notices_due,
    sync_eval_clock,
    term_end_at,
    token_expiry,
)

T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def test_constants_are_the_guides_numbers():
    assert s.EVAL_PERIOD == 90 * DAY
    assert s.AUTH_RENEW_INTERVAL == 30 * DAY
    assert s.AUTH_EXPIRY == 90 * DAY
    assert s.ID_CERT_VALIDITY == 365 * DAY
    assert s.ID_RENEW_INTERVAL == 180 * DAY
    assert s.OOC_GRACE == 30 * DAY
    assert s.RESERVATION_REMINDER_INTERVAL == 24 * HOUR
    assert s.AUTH_RETRY_INTERVAL == s.ID_RETRY_INTERVAL == 24 * HOUR
    assert s.DLC_DURATION == HOUR
    assert timedelta(minutes=60) == s.CLOCK_SKEW_TOLERANCE
    assert (s.TOKEN_MIN_DAYS, s.TOKEN_MAX_DAYS) == (1, 365)
    assert s.EVAL_NOTICE_DAYS == (90, 60, 30, 15, 5, 1)
    assert s.OOC_NOTICE_DAYS == (30, 15, 5, 1)
    assert s.LICENSE_EXPIRY_WARNING_DAYS == (90, 60, 30, 14, 7, 3, 1)


# --- EvalClock -------------------------------------------------------------------------


def test_eval_clock_counts_only_while_running_and_keeps_the_remainder():
    clock = EvalClock()
    assert not clock.running
    assert clock.expires_at() is None
    assert clock.remaining_at(T0 + 500 * DAY) == 90 * DAY  # paused: nothing consumed
    clock = clock.start(T0)
    assert clock.start(T0 + DAY) is clock  # starting twice changes nothing
    assert clock.expires_at() == T0 + 90 * DAY
    assert clock.remaining_at(T0 + 20 * DAY) == 70 * DAY
    clock = clock.stop(T0 + 20 * DAY)  # registered
    assert clock == EvalClock(70 * DAY, None)
    clock = clock.start(T0 + 120 * DAY)  # deregistered 100 days later
    assert clock.expires_at() == T0 + 190 * DAY
    assert clock.remaining_at(T0 + 500 * DAY) == timedelta(0)
    assert clock.expired(T0 + 190 * DAY)
    assert not clock.expired(T0 + 190 * DAY - timedelta(seconds=1))


def test_eval_should_run_only_unregistered_with_a_requested_license():
    assert eval_should_run(registered=False, licenses_requested=True)
    assert not eval_should_run(registered=True, licenses_requested=True)
    assert not eval_should_run(registered=False, licenses_requested=False)
    assert not eval_should_run(registered=False, licenses_requested=True, reservation_installed=True)


def test_sync_eval_clock():
    clock = sync_eval_clock(EvalClock(), should_run=True, now=T0)
    assert clock.running_since == T0
    assert sync_eval_clock(clock, should_run=True, now=T0 + DAY) is clock
    stopped = sync_eval_clock(clock, should_run=False, now=T0 + DAY)
    assert stopped == EvalClock(89 * DAY, None)
    assert sync_eval_clock(stopped, should_run=False, now=T0 + 2 * DAY) is stopped


@given(st.lists(st.integers(min_value=0, max_value=60 * 24 * 200), min_size=1, max_size=12))
def test_eval_clock_never_goes_negative_and_consumes_exactly_the_running_time(gaps_minutes):
    clock, now, running_total = EvalClock(), T0, timedelta(0)
    for n, gap in enumerate(gaps_minutes):
        now += timedelta(minutes=gap)
        if clock.running:
            running_total += timedelta(minutes=gap)
        clock = clock.stop(now) if n % 2 else clock.start(now)
        assert timedelta(0) <= clock.remaining_at(now) <= s.EVAL_PERIOD
    assert clock.remaining_at(now) == max(s.EVAL_PERIOD - running_total, timedelta(0))


# --- notice helpers ------------------------------------------------------------------------


def test_notice_times_and_notices_due():
    deadline = T0 + 30 * DAY
    assert notice_times(deadline, s.OOC_NOTICE_DAYS) == [
        (30, T0),
        (15, T0 + 15 * DAY),
        (5, T0 + 25 * DAY),
        (1, T0 + 29 * DAY),
        (0, deadline),
    ]
    assert notices_due(deadline, s.OOC_NOTICE_DAYS, after=None, now=T0 + 15 * DAY) == [(30, T0), (15, T0 + 15 * DAY)]
    assert notices_due(deadline, s.OOC_NOTICE_DAYS, after=T0, now=T0 + 26 * DAY) == [
        (15, T0 + 15 * DAY),
        (5, T0 + 25 * DAY),
    ]


# --- a tiny scheduler: fires due_now and records what it sent -------------------------------


def run_scheduler(inputs: TimerInputs, *, start: datetime, end: datetime, step: timedelta = HOUR):
    """Step the clock, fire what is due, and update the *_sent_through markers like the real job would."""
    fired: list[tuple[Due, datetime]] = []
    now = start
    while now <= end:
        for due in due_now(inputs, now=now):
            fired.append((due, now))
            if due.kind in ("eval_notice", "eval_expiry"):
                inputs = replace(inputs, eval_notices_sent_through=due.days_left)
            elif due.kind in ("ooc_notice", "ooc_expiry"):
                inputs = replace(
                    inputs, ooc_notices_sent_through={**inputs.ooc_notices_sent_through, due.subject: due.days_left}
                )
            elif due.kind in ("reserved_license_warning", "reserved_license_expiry"):
                inputs = replace(
                    inputs,
                    reserved_notices_sent_through={**inputs.reserved_notices_sent_through, due.subject: due.days_left},
                )
            elif due.kind == "reservation_reminder":
                inputs = replace(inputs, last_reservation_reminder_at=now)
        now += step
    return fired, inputs


def test_eval_notices_fire_90_60_30_15_5_1_days_before_and_at_expiry():
    inputs = TimerInputs(eval=EvalClock().start(T0))
    fired, _ = run_scheduler(inputs, start=T0, end=T0 + 100 * DAY)
    expiry = T0 + 90 * DAY
    assert [(d.kind, d.days_left, at) for d, at in fired] == [
        ("eval_notice", 90, expiry - 90 * DAY),
        ("eval_notice", 60, expiry - 60 * DAY),
        ("eval_notice", 30, expiry - 30 * DAY),
        ("eval_notice", 15, expiry - 15 * DAY),
        ("eval_notice", 5, expiry - 5 * DAY),
        ("eval_notice", 1, expiry - 1 * DAY),
        ("eval_expiry", 0, expiry),
    ]
    assert [d.key for d, _ in fired] == [
        "eval_notice:90",
        "eval_notice:60",
        "eval_notice:30",
        "eval_notice:15",
        "eval_notice:5",
        "eval_notice:1",
        "eval_expiry",
    ]


def test_eval_is_paused_while_registered_and_resumes_after_deregistration():
    clock = EvalClock().start(T0)
    fired, inputs = run_scheduler(TimerInputs(eval=clock), start=T0, end=T0 + 20 * DAY)
    assert [d.days_left for d, _ in fired] == [90]
    # Registered on day 20: the clock stops and no evaluation notice fires for 100 days.
    registered = replace(inputs, eval=clock.stop(T0 + 20 * DAY), registration_state=RegistrationState.REGISTERED)
    fired, _ = run_scheduler(registered, start=T0 + 20 * DAY, end=T0 + 120 * DAY, step=6 * HOUR)
    assert [d for d, _ in fired if d.kind.startswith("eval")] == []
    # Deregistered on day 120 with 70 days left: deadline is day 190.
    resumed = replace(inputs, eval=registered.eval.start(T0 + 120 * DAY))
    fired, _ = run_scheduler(resumed, start=T0 + 120 * DAY, end=T0 + 200 * DAY)
    deadline = T0 + 190 * DAY
    assert [(d.days_left, at) for d, at in fired] == [
        (60, deadline - 60 * DAY),
        (30, deadline - 30 * DAY),
        (15, deadline - 15 * DAY),
        (5, deadline - 5 * DAY),
        (1, deadline - DAY),
        (0, deadline),
    ]


def test_resuming_with_less_time_left_skips_thresholds_already_behind():
    # 40 days left after deregistration and nothing sent yet: no stale 90/60-day notice.
    clock = EvalClock(40 * DAY).start(T0)
    dues = next_due(TimerInputs(eval=clock), now=T0)
    assert [(d.kind, d.days_left, d.at) for d in dues] == [("eval_notice", 30, T0 + 10 * DAY)]


def test_a_scheduler_that_fell_behind_sends_only_the_latest_notice():
    clock = EvalClock().start(T0)
    dues = due_now(TimerInputs(eval=clock), now=T0 + 80 * DAY)
    assert [(d.kind, d.days_left) for d in dues] == [("eval_notice", 15)]


def test_eval_timers_stop_once_the_expiry_is_sent():
    clock = EvalClock().start(T0)
    assert next_due(TimerInputs(eval=clock, eval_notices_sent_through=0), now=T0 + 200 * DAY) == []


def test_ooc_notices_fire_30_15_5_1_days_before_and_at_grace_expiry_per_license():
    vof_since, case_since = T0, T0 + 3 * DAY + 5 * HOUR
    inputs = TimerInputs(
        registration_state=RegistrationState.REGISTERED,
        last_auth_success_at=T0 + 200 * DAY,  # keep auth timers out of the way
        ooc_since={"VOF": vof_since, "case": case_since},
    )
    fired, _ = run_scheduler(inputs, start=T0, end=T0 + 40 * DAY)
    for code, since in (("VOF", vof_since), ("case", case_since)):
        deadline = since + s.OOC_GRACE
        got = [(d.kind, d.days_left, at) for d, at in fired if d.subject == code]
        assert got == [
            ("ooc_notice", 30, deadline - 30 * DAY),
            ("ooc_notice", 15, deadline - 15 * DAY),
            ("ooc_notice", 5, deadline - 5 * DAY),
            ("ooc_notice", 1, deadline - DAY),
            ("ooc_expiry", 0, deadline),
        ]
    keys = [d.key for d, _ in fired if d.subject == "VOF"]
    assert keys[2] == "ooc_notice:VOF:5@20240101T090000Z"
    assert keys[-1] == "ooc_expiry:VOF@20240101T090000Z"


@pytest.mark.parametrize("days_left", s.LICENSE_EXPIRY_WARNING_DAYS)
def test_license_expiry_warning_points(days_left):
    end = date(2025, 3, 31)
    at = term_end_at(end) - timedelta(days=days_left)
    assert current_expiry_warning(end, now=at) == days_left
    before = current_expiry_warning(end, now=at - timedelta(seconds=1))
    assert before is None or before > days_left


def test_license_expiry_warnings_list_and_expiry():
    end = datetime(2025, 3, 31, tzinfo=UTC)
    assert license_expiry_warnings(end, now=end - 100 * DAY) == []
    assert [d for d, _ in license_expiry_warnings(end, now=end - 10 * DAY)] == [90, 60, 30, 14]
    assert [d for d, _ in license_expiry_warnings(end, now=end)] == [90, 60, 30, 14, 7, 3, 1, 0]
    assert current_expiry_warning(end, now=end + DAY) == 0
    assert current_expiry_warning(end, now=end - 91 * DAY) is None


def test_reserved_license_warnings_follow_the_cssm_cadence():
    end = T0 + 100 * DAY
    inputs = TimerInputs(reservation_state=ReservationState.SLR_INSTALLED, reserved_license_ends={"VOF": end})
    fired, _ = run_scheduler(inputs, start=T0, end=T0 + 101 * DAY, step=6 * HOUR)
    assert [(d.kind, d.days_left, at) for d, at in fired] == [
        ("reserved_license_warning", 90, end - 90 * DAY),
        ("reserved_license_warning", 60, end - 60 * DAY),
        ("reserved_license_warning", 30, end - 30 * DAY),
        ("reserved_license_warning", 14, end - 14 * DAY),
        ("reserved_license_warning", 7, end - 7 * DAY),
        ("reserved_license_warning", 3, end - 3 * DAY),
        ("reserved_license_warning", 1, end - DAY),
        ("reserved_license_expiry", 0, end),
    ]


# --- authorization and ID certificate ---------------------------------------------------------

REG = TimerInputs(
    registration_state=RegistrationState.REGISTERED,
    registered_at=T0,
    last_auth_success_at=T0,
    last_auth_attempt_at=T0,
    id_cert_issued_at=T0,
    id_cert_expires_at=T0 + s.ID_CERT_VALIDITY,
)


def kinds(dues):
    return {d.kind: d.at for d in dues}


def test_registered_timers():
    assert kinds(next_due(REG, now=T0)) == {
        "auth_renewal": T0 + 30 * DAY,
        "auth_expiry": T0 + 90 * DAY,
        "id_renewal": T0 + 180 * DAY,
        "id_expiry": T0 + 365 * DAY,
    }
    dues = next_due(REG, now=T0)
    assert [d.at for d in dues] == sorted(d.at for d in dues)
    assert dues[0].key == "auth_renewal:20240131T090000Z"


def test_failed_authorization_is_retried_every_24_hours_until_the_deadline():
    failed = replace(REG, last_auth_attempt_at=T0 + 30 * DAY, last_auth_failed=True)
    assert kinds(next_due(failed, now=T0 + 30 * DAY))["auth_renewal"] == T0 + 31 * DAY
    assert kinds(next_due(failed, now=T0 + 30 * DAY))["auth_expiry"] == T0 + 90 * DAY
    # An old failure before the last success does not cause retries.
    stale = replace(REG, last_auth_success_at=T0 + DAY, last_auth_attempt_at=T0, last_auth_failed=True)
    assert kinds(next_due(stale, now=T0 + DAY))["auth_renewal"] == T0 + 31 * DAY


def test_auth_expiry_is_not_repeated_once_expired():
    expired = replace(REG, authorization_state="auth_expired")
    assert "auth_expiry" not in kinds(next_due(expired, now=T0 + 91 * DAY))


def test_registered_but_never_authorized_authorizes_at_registration():
    fresh = replace(REG, last_auth_success_at=None, last_auth_attempt_at=None)
    assert kinds(next_due(fresh, now=T0 + HOUR))["auth_renewal"] == T0
    assert kinds(next_due(fresh, now=T0 + HOUR))["auth_expiry"] == T0 + 90 * DAY
    unknown = replace(fresh, registered_at=None)
    assert kinds(next_due(unknown, now=T0 + HOUR)) == {
        "auth_renewal": T0 + HOUR,
        "id_renewal": T0 + 180 * DAY,
        "id_expiry": T0 + 365 * DAY,
    }
    failed_first = replace(fresh, last_auth_attempt_at=T0, last_auth_failed=True)
    assert kinds(next_due(failed_first, now=T0))["auth_renewal"] == T0 + DAY


def test_failed_id_renewal_is_retried_daily():
    failed = replace(REG, last_id_renew_attempt_at=T0 + 180 * DAY, last_id_renew_failed=True)
    assert kinds(next_due(failed, now=T0 + 180 * DAY))["id_renewal"] == T0 + 181 * DAY
    no_expiry_given = replace(REG, id_cert_expires_at=None)
    assert kinds(next_due(no_expiry_given, now=T0))["id_expiry"] == T0 + 365 * DAY


@pytest.mark.parametrize("state", [st for st in RegistrationState if st != RegistrationState.REGISTERED])
def test_no_auth_or_id_timers_unless_registered(state):
    assert next_due(replace(REG, registration_state=state), now=T0) == []


def test_due_now_is_the_subset_already_due():
    assert due_now(REG, now=T0) == []
    assert [d.kind for d in due_now(REG, now=T0 + 90 * DAY)] == ["auth_renewal", "auth_expiry"]


# --- reservation reminder and DLC ------------------------------------------------------------------


def test_reservation_reminder_every_24_hours_until_installed():
    inputs = TimerInputs(reservation_state=ReservationState.REQUESTED, reservation_requested_at=T0)
    fired, after = run_scheduler(inputs, start=T0, end=T0 + 3 * DAY)
    assert [at for _, at in fired] == [T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
    installed = replace(after, reservation_state=ReservationState.SLR_INSTALLED)
    assert next_due(installed, now=T0 + 4 * DAY) == []
    # A reminder stamp from an earlier request does not delay the new one.
    again = replace(after, reservation_requested_at=T0 + 10 * DAY)
    assert kinds(next_due(again, now=T0 + 10 * DAY))["reservation_reminder"] == T0 + 10 * DAY


def test_dlc_completes_an_hour_after_it_starts():
    inputs = TimerInputs(dlc_state=ConversionState.IN_PROGRESS, dlc_started_at=T0)
    assert [(d.kind, d.at, d.key) for d in next_due(inputs, now=T0)] == [
        ("dlc_completion", T0 + HOUR, "dlc_completion:20240101T100000Z")
    ]
    assert next_due(replace(inputs, dlc_state=ConversionState.SUCCESS), now=T0) == []


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        next_due(REG, now=datetime(2024, 1, 1))


def test_with_changes():
    assert REG.with_changes(last_auth_failed=True).last_auth_failed


# --- CSSM side ------------------------------------------------------------------------------------


def test_token_expiry_bounds():
    assert token_expiry(T0, 1) == T0 + DAY
    assert token_expiry(T0, 365) == T0 + 365 * DAY
    for bad in (0, 366, -1, True, 1.5):
        with pytest.raises(ValueError, match="between 1 - 365"):
            token_expiry(T0, bad)


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (timedelta(0), "ok"),
        (30 * DAY, "ok"),
        (30 * DAY + timedelta(seconds=1), "failed_to_connect"),
        (365 * DAY, "failed_to_connect"),
        (365 * DAY + timedelta(seconds=1), "failed_to_renew"),
    ],
)
def test_instance_connect_status(age, status):
    assert instance_connect_status(T0, now=T0 + age) == status


def test_term_end_at():
    assert term_end_at(date(2018, 8, 31)) == datetime(2018, 8, 31, tzinfo=UTC)
    assert term_end_at(T0) == T0
