"""Simulated appliances (Secure Email Gateway and Secure Email and Web Manager)."""

from django.db import models

from licensing_core.models import Lab


class Product(models.TextChoices):
    ESA = "ESA", "Cisco Secure Email Gateway"
    SMA = "SMA", "Cisco Secure Email and Web Manager"


class Appliance(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="appliances")
    hostname = models.CharField(max_length=253)
    product = models.CharField(max_length=3, choices=Product.choices)
    model_pid = models.CharField(max_length=16, help_text="Hardware or virtual model, e.g. C395 or C100V.")
    serial = models.CharField(max_length=64)
    virtual = models.BooleanField(default=False)
    # Classic (PAK / feature key) licences held before Smart Licensing; they
    # decide evaluation eligibility and what Device Led Conversion converts.
    classic_feature_keys = models.JSONField(default=list, blank=True)
    clock_skew_minutes = models.IntegerField(default=0)

    class Meta:
        ordering = ["hostname"]
        constraints = [models.UniqueConstraint(fields=["lab", "hostname"], name="unique_hostname_per_lab")]

    def __str__(self) -> str:
        return self.hostname
