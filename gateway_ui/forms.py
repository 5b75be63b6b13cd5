from django import forms
from django.conf import settings

from gateway_ui.models import ALERT_CLASSES, TransportMode
from licensing_core.alerts import GatewaySeverity


class RegisterForm(forms.Form):
    token = forms.CharField(
        label="Product Instance Registration Token", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    reregister = forms.BooleanField(
        label="Reregister this product instance if it is already registered", required=False
    )
    all_machines = forms.BooleanField(
        label="Register Smart Software Licensing across machines in cluster", required=False
    )


class TransportForm(forms.Form):
    mode = forms.ChoiceField(choices=TransportMode.choices, widget=forms.RadioSelect, initial=TransportMode.DIRECT)
    url = forms.CharField(label="URL", required=False, max_length=500)


class AuthCodeForm(forms.Form):
    SOURCE = (("paste", "Copy and Paste authorization code"), ("upload", "Upload authorization code from the system"))
    source = forms.ChoiceField(choices=SOURCE, widget=forms.RadioSelect, initial="paste")
    code = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 8}))
    code_file = forms.FileField(required=False, label="Choose File")

    def code_text(self) -> str:
        if self.cleaned_data.get("source") == "upload":
            upload = self.cleaned_data.get("code_file")
            if not upload:
                return ""
            if upload.size > settings.LAB_UPLOAD_MAX_BYTES:
                return "\x00too-large"
            try:
                return upload.read().decode("utf-8")
            except UnicodeDecodeError:
                return "\x00binary"
        return self.cleaned_data.get("code") or ""


class ProxyForm(forms.Form):
    host = forms.CharField(label="Proxy Server", required=False, max_length=253)
    port = forms.IntegerField(label="Port", required=False, min_value=1, max_value=65535)
    username = forms.CharField(label="User Name", required=False, max_length=150)
    password = forms.CharField(label="Password", required=False, max_length=150, widget=forms.PasswordInput)


class RecipientForm(forms.Form):
    address = forms.EmailField(label="Recipient Address")
    classes = forms.MultipleChoiceField(
        label="Alert classes", choices=[(c, c) for c in ALERT_CLASSES], widget=forms.CheckboxSelectMultiple
    )
    severities = forms.MultipleChoiceField(
        label="Severities", choices=GatewaySeverity.choices, widget=forms.CheckboxSelectMultiple
    )


class AirgapForm(forms.Form):
    vln = forms.CharField(label="VLN", max_length=64)
    certificate = forms.CharField(label="Certificate", widget=forms.Textarea(attrs={"rows": 6}))
    key = forms.CharField(label="Key", widget=forms.Textarea(attrs={"rows": 6}))
