from datetime import UTC, datetime, time

from django import forms

from labs.faults import MAX_SKEW_MINUTES
from labs.scenarios import scenarios
from licensing_core.roles import GatewayRole


class AdvanceToForm(forms.Form):
    date = forms.DateField(label="Advance to", widget=forms.DateInput(attrs={"type": "date"}))

    def target(self) -> datetime:
        return datetime.combine(self.cleaned_data["date"], time(0, 0), tzinfo=UTC)


class _Named(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    slug = forms.SlugField(
        label="Short name", max_length=60, help_text="Lower-case letters, digits and hyphens; used in the lab's URLs."
    )


class NewLabForm(_Named):
    KINDS = (("empty", "Empty"), ("demo", "Demo world (Example Corp, esa1, esa2, sma1)"), ("scenario", "A scenario"))
    kind = forms.ChoiceField(label="Start from", choices=KINDS, widget=forms.RadioSelect, initial="scenario")
    scenario = forms.ChoiceField(label="Scenario", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scenario"].choices = [("", "—")] + [(s.name, s.title) for s in scenarios()]

    def clean(self):
        data = super().clean()
        if data.get("kind") == "scenario" and not data.get("scenario"):
            self.add_error("scenario", "Choose a scenario from the library.")
        return data


class CloneForm(_Named):
    pass


class DeleteForm(forms.Form):
    confirm = forms.CharField(label="Type the lab's short name to confirm", max_length=60)


class ImportForm(_Named):
    file = forms.FileField(label="Lab file (JSON export)")


class MemberForm(forms.Form):
    username = forms.CharField(label="User name", max_length=150)
    gateway_role = forms.ChoiceField(label="Appliance role", choices=GatewayRole.choices)
    is_manager = forms.BooleanField(label="Lab manager", required=False)


class SkewForm(forms.Form):
    hostname = forms.CharField(max_length=253)
    minutes = forms.IntegerField(
        label="Minutes ahead (negative: behind)", min_value=-MAX_SKEW_MINUTES, max_value=MAX_SKEW_MINUTES
    )


class RevokeForm(forms.Form):
    token = forms.IntegerField(label="Token")


class ShortageForm(forms.Form):
    pool = forms.IntegerField(label="Licence")
    target = forms.IntegerField(label="Move to virtual account")
    quantity = forms.IntegerField(label="Quantity", min_value=1, max_value=100000)


class PasteForm(_Named):
    text = forms.CharField(
        label="license_smart output", required=False, strip=False,
        widget=forms.Textarea(attrs={"rows": 18, "cols": 100, "spellcheck": "false"}),
    )  # fmt: skip
    file = forms.FileField(label="or upload it as a text file", required=False)
