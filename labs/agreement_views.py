"""Lab action: Cisco publishes an updated Smart Software Licensing Agreement
(cssm_portal.agreements). Every Smart Account of the lab must then accept it."""

from django import forms
from django.contrib import messages
from django.views.decorators.http import require_POST

from cssm_portal.agreements import SUMMARY_MAX, TEXT_MAX, agreement_publish
from cssm_portal.services import ServiceError
from labs.manage_views import _detail, _form_errors, _managed
from licensing_core.clock import lab_now


class AgreementPublishForm(forms.Form):
    summary = forms.CharField(label="What changed", max_length=SUMMARY_MAX)
    text = forms.CharField(
        label="Agreement text (empty: keep the current text)", max_length=TEXT_MAX, required=False, strip=False
    )


@require_POST
def agreement_publish_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    form = AgreementPublishForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _detail(lab)
    try:
        agreement = agreement_publish(lab=lab, actor=request.user.get_username(), now=lab_now(lab), **form.cleaned_data)
    except ServiceError as exc:
        messages.error(request, exc.reason)
        return _detail(lab)
    messages.success(
        request,
        f"Smart Software Licensing Agreement version {agreement.version} published: every Smart Account of the "
        "lab must accept it.",
    )
    return _detail(lab)
