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
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.template.base import Template, TextNode, Variable, VariableNode
from django.template.context import make_context
from django.template.loader import get_template, render_to_string
from django.utils.html import conditional_escape

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


# Values a rendered variable may be remembered by: equal only when they render
# alike (unlike 1.0 and 1.00 as Decimals, or one instant in two time zones).
_MEMO_TYPES = (str, int, bool, type(None), date, datetime)


def _memo_key(value) -> tuple:
    if isinstance(value, datetime):
        return (datetime, value.replace(tzinfo=None), value.tzinfo, value.fold)
    return (type(value), value)


class _Parts:
    """One template cut into its text and its variables, so that many
    messages render without the template engine's per-render overhead (1,000
    alert e-mails cost 0.7 s through render_to_string). Only templates made of
    text and {{ variables }} are cut: `parts` is None for one with a tag. The
    output is exactly render_to_string's: a plain {{ name }} holding a text is
    escaped as the engine escapes it; everything else is rendered by its own
    node, remembered per distinct input values within one `mail_render_many`."""

    def __init__(self, name: str) -> None:
        backend_template = get_template(name)
        self.template = getattr(backend_template, "template", None)
        self.memo: dict = {}
        self.parts: list | None = None
        if not isinstance(self.template, Template):
            return  # not a Django template
        self.autoescape = backend_template.backend.engine.autoescape
        parts: list | None = []
        for node in self.template.nodelist:
            if isinstance(node, TextNode):
                parts.append(node.s)
            elif isinstance(node, VariableNode):
                parts.append((node, self._plain_name(node), self._inputs(node)))
            else:
                parts = None
                break
        self.parts = parts

    @staticmethod
    def _plain_name(node: VariableNode) -> str | None:
        expr = node.filter_expression
        var = expr.var
        if expr.filters or not isinstance(var, Variable) or var.translate:
            return None
        return var.lookups[0] if var.lookups is not None and len(var.lookups) == 1 else None

    @staticmethod
    def _inputs(node: VariableNode) -> tuple[str, ...] | None:
        """The context names the node reads (None: it reads more than names)."""
        expr = node.filter_expression
        variables = [expr.var] + [arg for _, args in expr.filters for lookup, arg in args if lookup]
        names = []
        for var in variables:
            if not isinstance(var, Variable):
                continue  # a literal
            if var.lookups is None:
                continue
            if len(var.lookups) != 1:
                return None  # an attribute: the object is not a memo key
            names.append(var.lookups[0])
        return tuple(names)

    def _node(self, node: VariableNode, context: dict) -> str:
        ctx = make_context(context, autoescape=self.autoescape)
        with ctx.render_context.push_state(self.template), ctx.bind_template(self.template):
            ctx.template_name = self.template.name
            return node.render_annotated(ctx)

    def render(self, context: dict) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            node, plain, inputs = part
            value = context.get(plain) if plain is not None else None
            if isinstance(value, str):
                out.append(conditional_escape(value) if self.autoescape else str(value))
                continue
            key = None
            if inputs is not None and all(n in context for n in inputs):
                values = [context[n] for n in inputs]
                if all(type(v) in _MEMO_TYPES for v in values):
                    key = (id(node), *(_memo_key(v) for v in values))
            if key is None:
                out.append(self._node(node, context))
            else:
                if key not in self.memo:
                    self.memo[key] = self._node(node, context)
                out.append(self.memo[key])
        return "".join(out)


def mail_render_many(name: str, contexts: list[dict]) -> list[tuple[str, str, str]]:
    """`mail_render` of each context, the same strings, for many messages at once."""
    templates = [_Parts(f"emails/{name}-{suffix}") for suffix in ("subject.txt", "body.txt", "body.html")]
    if any(t.parts is None for t in templates):
        return [mail_render(name, context) for context in contexts]
    subject, text, html = templates
    out = []
    for context in contexts:
        line = " ".join(subject.render(context).strip().split())
        out.append((line, text.render(context), html.render(context)))
    return out


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

    def render_context(self) -> dict:
        """What the templates see: the context, the lab and its time."""
        return {**self.context, "lab": self.lab, "lab_time": self.lab_time}

    def message(self, rendered: tuple[str, str, str] | None = None) -> MailMessage:
        """The outbox row, not saved: rendered here unless `rendered` (subject, text, html) is given."""
        if rendered is None:
            rendered = mail_render(self.template, self.render_context())
        subject, text, html = rendered
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
    queued: list[MailDraft | None] = []
    for draft in drafts:
        if not draft.recipients or draft.dedupe_key in taken:
            queued.append(None)
            continue
        taken.add(draft.dedupe_key)
        queued.append(draft)
    rendered: dict[int, tuple[str, str, str]] = {}
    by_template: dict[str, list[int]] = {}
    for i, draft in enumerate(queued):
        if draft is not None:
            by_template.setdefault(draft.template, []).append(i)
    for name, indexes in by_template.items():
        texts = mail_render_many(name, [queued[i].render_context() for i in indexes])
        rendered.update(zip(indexes, texts, strict=True))
    out = [None if draft is None else draft.message(rendered[i]) for i, draft in enumerate(queued)]
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
