"""Forms of the dashboard (parsing and validating what staff type)."""

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _


class IdentityConsentForm(forms.Form):
    """A depicted person's consent to an identity, as signed on paper or elsewhere."""

    person_name = forms.CharField(label=_("Person"), max_length=200)
    document_reference = forms.CharField(label=_("Document"), max_length=200)
    valid_from = forms.DateField(label=_("Valid from"), widget=forms.DateInput({"type": "date"}))
    valid_until = forms.DateField(label=_("Valid until"), widget=forms.DateInput({"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end <= start:
            raise forms.ValidationError(_("“Valid until” must be after “Valid from”."))
        return data

    def period(self) -> tuple[dt.datetime, dt.datetime]:
        """The validity as UTC datetimes: from the first day's start to the last day's end."""
        start = dt.datetime.combine(self.cleaned_data["valid_from"], dt.time.min, dt.UTC)
        end = dt.datetime.combine(self.cleaned_data["valid_until"], dt.time.max, dt.UTC)
        return start, end
