"""Shared helpers for the scenario, export/import and lab admin tests."""

import re

from django.urls import reverse

from labs.pages import page_url

_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def visible_text(html: str) -> str:
    return _SPACE.sub(" ", _TAGS.sub(" ", html)).replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def page_text(client, lab, key: str) -> str:
    url = page_url(lab=lab, key=key)
    response = client.get(url, follow=True)
    if b"available only in machine mode" in response.content:
        # A clustered appliance: switch the GUI to Machine mode as the admin would.
        host = key.partition(":")[2]
        client.post(reverse("gateway:cluster_mode", args=[lab.slug, host]), {"mode": "machine", "machine": host})
        response = client.get(url, follow=True)
    assert response.status_code == 200, (key, response.status_code)
    return visible_text(response.content.decode())
