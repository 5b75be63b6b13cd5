"""E-mail for the lab.

`MailboxBackend` is the default backend: messages are stored as MailMessage
rows that the lab's Mailbox page shows, so demos need no mail server. The lab
and lab time a message belongs to travel in the `X-Lab-Id` and `X-Lab-Time`
headers that the sending code sets.
"""

from datetime import datetime

from django.core.mail.backends.base import BaseEmailBackend

from licensing_core.models import MailMessage


def _html_alternative(message) -> str:
    for content, mimetype in getattr(message, "alternatives", []) or []:
        if mimetype == "text/html":
            return content
    return ""


class MailboxBackend(BaseEmailBackend):
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
                )
            )
        MailMessage.objects.bulk_create(rows)
        return len(rows)
