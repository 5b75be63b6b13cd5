"""E-mail for the lab: templates, the outbox and delivery.

Messages are rendered from subject/text/html template triplets
(templates/emails/<name>-subject.txt, -body.txt, -body.html), written once to
the outbox (MailMessage) with a dedupe key, and delivered by
`outbox_deliver`, which claims each row before sending it.

Without EMAIL_HOST the default backend is `MailboxBackend`: delivery then
just marks the row sent, and the lab's Mailbox page is where it is read.
Mail sent directly through Django (send_mail) with that backend is stored as
a row too, so every message the lab sends shows in the Mailbox.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from licensing_core.models import Lab, MailMessage, MailStatus

MAILBOX_BACKEND = "licensing_core.mail.MailboxBackend"
# A row left in "sending" this long (its worker died mid-delivery) is tried
# again. The window in which that can send a message twice is the moment
# between the SMTP server accepting it and the row being marked sent.
STALE_CLAIM = timedelta(minutes=10)


def _html_alternative(message) -> str:
    for content, mimetype in getattr(message, "alternatives", []) or []:
        if mimetype == "text/html":
            return content
    return ""


class MailboxBackend(BaseEmailBackend):
    """Keeps each message as a MailMessage row (status sent) for the Mailbox."""

    def send_messages(self, email_messages) -> int:
        rows = []
        for message in email_messages:
            headers = message.extra_headers or {}
            lab_id = headers.get("X-Lab-Id")
            lab_time = headers.get("X-Lab-Time")
            rows.append(
                MailMessage(
                    lab_id=int(lab_id) if lab_id else None,
                    lab_time=datetime.fromisoformat(lab_time) if lab_time else None,
                    sender=message.from_email,
                    recipients=list(message.recipients()),
                    subject=message.subject,
                    body_text=message.body,
                    body_html=_html_alternative(message),
                    status=MailStatus.SENT,
                )
            )
        MailMessage.objects.bulk_create(rows)
        return len(rows)


def mail_render(name: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) from the emails/<name>-* template triplet."""
    subject = render_to_string(f"emails/{name}-subject.txt", context).strip()
    subject = " ".join(subject.split())  # a header is one line
    text = render_to_string(f"emails/{name}-body.txt", context)
    html = render_to_string(f"emails/{name}-body.html", context)
    return subject, text, html


@dataclass(frozen=True)
class MailDraft:
    """One message to queue: the arguments of `mail_enqueue`."""

    lab: Lab | None
    lab_time: datetime | None
    template: str
    context: dict
    recipients: list[str]
    dedupe_key: str
    sender: str | None = None

    def message(self) -> MailMessage:
        """The outbox row (rendered, not saved)."""
        subject, text, html = mail_render(self.template, {**self.context, "lab": self.lab, "lab_time": self.lab_time})
        return MailMessage(
            lab=self.lab,
            lab_time=self.lab_time,
            dedupe_key=self.dedupe_key,
            sender=self.sender or settings.DEFAULT_FROM_EMAIL,
            recipients=list(self.recipients),
            subject=subject,
            body_text=text,
            body_html=html,
            status=MailStatus.PENDING,
        )


def mail_enqueue(
    *,
    lab: Lab | None,
    lab_time: datetime | None,
    template: str,
    context: dict,
    recipients: list[str],
    dedupe_key: str,
    sender: str | None = None,
) -> MailMessage | None:
    """Queue one message. Returns None when a message with this dedupe key was
    already queued (the same alert falling due twice sends one e-mail)."""
    return draft_enqueue(MailDraft(lab, lab_time, template, context, recipients, dedupe_key, sender))


def draft_enqueue(draft: MailDraft) -> MailMessage | None:
    """`mail_enqueue` for a draft."""
    if not draft.recipients:
        return None
    message = draft.message()
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        return None
    outbox_kick()
    return message


def mail_enqueue_many(drafts: list[MailDraft]) -> list[MailMessage | None]:
    """`mail_enqueue` for many messages in two queries: one result per draft,
    None where there are no recipients or the dedupe key is already queued
    (in the outbox or earlier in `drafts`). For callers that own the keys
    they write (the gateway sweep holds a claim on each appliance whose
    alerts it mails), so no other writer adds one of them meanwhile."""
    keys = [d.dedupe_key for d in drafts if d.recipients]
    taken = set(MailMessage.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True)) if keys else set()
    out: list[MailMessage | None] = []
    for draft in drafts:
        if not draft.recipients or draft.dedupe_key in taken:
            out.append(None)
            continue
        taken.add(draft.dedupe_key)
        out.append(draft.message())
    rows = [m for m in out if m is not None]
    if rows:
        MailMessage.objects.bulk_create(rows, batch_size=1000)
        outbox_kick()
    return out


def _kick() -> None:
    from licensing_core.tasks import outbox_deliver_task, task_send

    task_send(outbox_deliver_task)


def outbox_kick() -> None:
    """Deliver soon: enqueue the delivery task once the transaction commits
    (once per transaction). With the broker down the rows simply wait for
    the beat's next delivery run."""
    connection = transaction.get_connection()
    if any(entry[1] is _kick for entry in connection.run_on_commit):
        return
    transaction.on_commit(_kick)


def _claim(message_id: int, *, now: datetime) -> bool:
    """Claim a row for delivery; True only for the one caller that won it."""
    claimed = MailMessage.objects.filter(pk=message_id, status=MailStatus.PENDING).update(
        status=MailStatus.SENDING, claimed_at=now
    )
    return claimed == 1


def outbox_deliver(*, now: datetime, limit: int = 100) -> int:
    """Deliver pending messages; returns how many were sent.

    `now` is wall time here: delivery happens in the real world, whatever the
    lab's clock says.
    """
    MailMessage.objects.filter(status=MailStatus.SENDING, claimed_at__lt=now - STALE_CLAIM).update(
        status=MailStatus.PENDING
    )
    pending = list(MailMessage.objects.filter(status=MailStatus.PENDING).order_by("id")[:limit])
    if not pending:
        return 0
    keep_in_mailbox = settings.EMAIL_BACKEND == MAILBOX_BACKEND
    connection = None if keep_in_mailbox else get_connection(fail_silently=False)
    sent = 0
    try:
        for message in pending:
            if not _claim(message.pk, now=now):
                continue  # another worker has it
            try:
                if connection is not None:
                    email = EmailMultiAlternatives(
                        message.subject,
                        message.body_text,
                        message.sender,
                        message.recipients,
                        connection=connection,
                        headers={"X-Lab-Time": message.lab_time.isoformat() if message.lab_time else ""},
                    )
                    if message.body_html:
                        email.attach_alternative(message.body_html, "text/html")
                    email.send()
            except Exception as exc:  # SMTP down or refused: keep it for the next run
                MailMessage.objects.filter(pk=message.pk).update(
                    status=MailStatus.PENDING, attempts=message.attempts + 1, last_error=str(exc)[:1000]
                )
                connection = None if keep_in_mailbox else get_connection(fail_silently=False)
                continue
            MailMessage.objects.filter(pk=message.pk).update(
                status=MailStatus.SENT, sent_at=now, attempts=message.attempts + 1, last_error=""
            )
            sent += 1
    finally:
        if connection is not None:
            connection.close()
    return sent
