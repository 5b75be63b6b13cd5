from datetime import UTC, datetime, time

from django import forms


class AdvanceToForm(forms.Form):
    date = forms.DateField(label="Advance to", widget=forms.DateInput(attrs={"type": "date"}))

    def target(self) -> datetime:
        return datetime.combine(self.cleaned_data["date"], time(0, 0), tzinfo=UTC)
