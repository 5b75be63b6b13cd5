"""Portal forms: field errors are shown beside the field."""

from django import forms
from django.conf import settings

from cssm_portal.services import EXPIRING_DAY_OPTIONS, PREFERENCE_EVENTS
from licensing_core.schedules import TOKEN_MAX_DAYS, TOKEN_MIN_DAYS


class TokenForm(forms.Form):
    description = forms.CharField(label="Description", max_length=100, required=False)
    expire_days = forms.IntegerField(
        label="Expire After",
        initial=30,
        error_messages={"required": "Enter the number of days.", "invalid": "Enter a whole number of days."},
    )
    max_uses = forms.IntegerField(
        label="Max. Number of Uses", required=False, error_messages={"invalid": "Enter a whole number."}
    )
    export_controlled = forms.BooleanField(
        label="Allow export-controlled functionality on the products registered with this token", required=False
    )

    def clean_expire_days(self):
        days = self.cleaned_data["expire_days"]
        if not TOKEN_MIN_DAYS <= days <= TOKEN_MAX_DAYS:
            raise forms.ValidationError(f"Expire After must be between {TOKEN_MIN_DAYS} - {TOKEN_MAX_DAYS} days.")
        return days

    def clean_max_uses(self):
        uses = self.cleaned_data["max_uses"]
        if uses is not None and uses < 1:
            raise forms.ValidationError("Max. Number of Uses must be 1 or more.")
        return uses


class RequestCodeForm(forms.Form):
    request_code = forms.CharField(label="Reservation Request Code", widget=forms.Textarea, required=False)
    request_file = forms.FileField(label="Upload File", required=False)

    def clean(self):
        data = super().clean()
        upload = data.get("request_file")
        if upload:
            if upload.size > settings.LAB_UPLOAD_MAX_BYTES:
                raise forms.ValidationError({"request_file": "The file is larger than 64 KiB."})
            try:
                data["request_code"] = upload.read().decode("utf-8").strip()
            except UnicodeDecodeError:
                raise forms.ValidationError({"request_file": "The file is not a text file."}) from None
        if not (data.get("request_code") or "").strip():
            raise forms.ValidationError({"request_code": "Enter or upload the Reservation Request Code."})
        return data


class TransferForm(forms.Form):
    target = forms.TypedChoiceField(label="Transfer To", coerce=int)
    quantity = forms.IntegerField(label="Quantity to Transfer", min_value=1)

    def __init__(self, *args, targets=(), with_quantity=True, **kw):
        super().__init__(*args, **kw)
        self.fields["target"].choices = [("", "Select a Virtual Account")] + [(va.pk, va.name) for va in targets]
        if not with_quantity:
            del self.fields["quantity"]


class RemoveForm(forms.Form):
    return_code = forms.CharField(label="Reservation Return Code", required=False, widget=forms.Textarea)


class ConfirmationForm(forms.Form):
    confirmation_code = forms.CharField(label="Confirmation Code", max_length=40)


class PreferencesForm(forms.Form):
    daily_summary = forms.BooleanField(label="Daily Event Summary", required=False)
    email = forms.EmailField(label="Email Address", required=False)
    virtual_accounts = forms.TypedMultipleChoiceField(label="Select Virtual Account", coerce=int, required=False)
    alert_events = forms.MultipleChoiceField(
        label="Alert Events",
        required=False,
        choices=[(t.value, t.label) for t, _ in PREFERENCE_EVENTS],
        widget=forms.CheckboxSelectMultiple,
    )
    expiring_days = forms.TypedMultipleChoiceField(
        label="Licenses Expiring",
        coerce=int,
        required=False,
        choices=[(d, f"{d} Days") for d in EXPIRING_DAY_OPTIONS],
        widget=forms.CheckboxSelectMultiple,
    )
    status_notification = forms.BooleanField(label="Status Notification", required=False)

    def __init__(self, *args, vas=(), **kw):
        super().__init__(*args, **kw)
        self.fields["virtual_accounts"].choices = [(va.pk, va.name) for va in vas]


class VirtualAccountForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    description = forms.CharField(label="Description", max_length=255, required=False)


class SmartAccountRequestForm(forms.Form):
    name = forms.CharField(label="Account Name", max_length=50)
    domain = forms.CharField(label="Account Domain Identifier", max_length=253)


class PakForm(forms.Form):
    pak = forms.CharField(label="PAK", max_length=40)
    license_tag = forms.ChoiceField(label="License")
    quantity = forms.IntegerField(label="Quantity", min_value=1, max_value=10000)
    target = forms.TypedChoiceField(label="Virtual Account", coerce=int)

    def __init__(self, *args, vas=(), licenses=(), **kw):
        super().__init__(*args, **kw)
        self.fields["target"].choices = [(va.pk, va.name) for va in vas]
        self.fields["license_tag"].choices = [(lic.entitlement_tag, f"{lic.sku} {lic.name}") for lic in licenses]
