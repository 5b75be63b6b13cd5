"""Portal pages of the Smart Account itself: the Smart Software Licensing Agreement
(banner, page, Accept) and the On-Prem Accounts actions (Unregister, manual file
synchronization). Thin, like cssm_portal.views: access from cssm_portal.access,
changes through cssm_portal.agreements and cssm_portal.satellites."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cssm_portal import agreements, satellites
from cssm_portal.models import AgreementAcceptance, SatelliteInstance
from cssm_portal.services import ServiceError
from cssm_portal.views import _dialog, _redirect_or_hx, _url, portal_view

# --- the Smart Software Licensing Agreement -------------------------------------------------------


@require_GET
@portal_view
def agreement(request, portal):
    sa = portal.smart_account
    current = sa.pending_agreement if sa.pending_agreement_id else agreements.agreement_current(lab=portal.lab)
    acceptances = AgreementAcceptance.objects.filter(smart_account=sa).select_related("agreement")[:20]
    return render(
        request,
        "cssm_portal/agreement.html",
        {"portal": portal, "tab": "", "agreement": current, "acceptances": acceptances},
    )


@require_POST
@portal_view
def agreement_accept(request, portal):
    portal.require_sa_admin()
    raw = request.POST.get("agreement", "")
    agreement_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    try:
        accepted = agreements.agreement_accept(
            smart_account=portal.smart_account,
            agreement_id=agreement_id,
            actor=request.user.get_username(),
            now=portal.now,
        )
    except ServiceError as exc:
        messages.error(request, exc.reason)
    else:
        version = accepted.agreement.version
        messages.info(request, f"You accepted version {version} of the Smart Software Licensing Agreement.")
    return redirect(_url("agreement", portal))


# --- On-Prem Accounts: Unregister, manual synchronization ------------------------------------------


def _satellite(portal, sat_id: int) -> SatelliteInstance:
    sat = SatelliteInstance.objects.filter(smart_account=portal.smart_account, pk=sat_id).first()
    if sat is None:
        raise Http404("No such Satellite.")
    return sat


def _attachment(filename: str, text: str) -> HttpResponse:
    response = HttpResponse(text, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_http_methods(["GET", "POST"])
@portal_view
def satellite_unregister(request, portal, sat_id: int):
    portal.require_sa_admin()
    sat = _satellite(portal, sat_id)
    if request.method == "POST":
        satellites.satellite_unregister(satellite=sat, actor=request.user.get_username(), now=portal.now)
        messages.info(request, f'Satellite "{sat.name}" was unregistered and removed.')
        return _redirect_or_hx(request, _url("on_prem", portal))
    return _dialog(
        request,
        portal,
        "cssm_portal/dialogs/satellite_unregister.html",
        {"sat": sat, "vas": list(sat.virtual_accounts.all()), "close_url": _url("on_prem", portal)},
    )


@require_GET
@portal_view
def satellite_sync_request(request, portal, sat_id: int):
    """The synchronization file, as exported from the satellite (the lab stands in for it)."""
    portal.require_sa_admin()
    filename, text = satellites.sync_request_file(satellite=_satellite(portal, sat_id), now=portal.now)
    return _attachment(filename, text)


class SyncUploadForm(forms.Form):
    file = forms.FileField(
        label="Synchronization file",
        error_messages={"required": "Choose the synchronization file exported from the satellite."},
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        limit = settings.LAB_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The file is larger than {limit // 1024} KiB: not a synchronization file.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not a text file: it is not a synchronization file.") from None


@require_POST
@portal_view
def satellite_sync_upload(request, portal):
    portal.require_sa_admin()
    form = SyncUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        for error in form.errors.get("file", []):
            messages.error(request, error)
        return redirect(_url("on_prem", portal))
    try:
        sat = satellites.sync_file_upload(
            smart_account=portal.smart_account,
            text=form.cleaned_data["file"],
            actor=request.user.get_username(),
            now=portal.now,
        )
    except ServiceError as exc:
        messages.error(request, exc.reason)
    else:
        messages.info(request, f'The authorization file for Satellite "{sat.name}" is ready to download.')
    return redirect(_url("on_prem", portal))


@require_POST
@portal_view
def satellite_authorization(request, portal, sat_id: int):
    """Download the authorization file (POST: the first download synchronizes the satellite)."""
    portal.require_sa_admin()
    try:
        filename, text = satellites.authorization_file_download(
            satellite=_satellite(portal, sat_id), actor=request.user.get_username(), now=portal.now
        )
    except ServiceError as exc:
        messages.error(request, exc.reason)
        return redirect(_url("on_prem", portal))
    return _attachment(filename, text)
