"""Build a large lab in bulk, for benchmarks and scale tests.

    manage.py seed_fleet --lab fleet --appliances 100000 [--registered 1000]
        [--tokens 50] [--alerts 200] [--events 0] [--va Fleet] [--user bench]

What it builds (all real, valid rows):

- the lab (created if missing, clock frozen) with the demo world (Example
  Corp, its virtual accounts, the demo personas) and a benchmark user who is
  Smart Account Administrator and a lab manager;
- a virtual account (--va) holding `--appliances` product instances with
  UDIs, one usage row per requested licence, an ID certificate issued by the
  lab's CA for the instance's own UDI, and the registration event of each;
  licence pools (purchased = enough for all of them) with their order
  transactions;
- `--registered` of those instances are simulated appliances as well,
  registered and authorized: one template appliance goes through the real
  services (enable, commit, register over HTTP to this project's CSSM
  endpoint, request licences), then is cloned in bulk with its own hostname,
  serial, device key and certificate, its licence rows, alerts and event
  rows, so every clone is in the state the services would have produced and
  its timers (next_due_at) are the template's;
- `--tokens` registration tokens (valid values signed with the lab secret);
- `--alerts` open "Product Instance Failed to Connect" alerts: that many
  instances get a last contact older than the connect window, so the alert
  rule holds for exactly those (the portal's alert refresh keeps them);
- `--events` extra CSSM event rows in the virtual account.

Rows are written with bulk_create in batches (--batch). Running it again on
the same lab adds instances with new serials (the --appliances count is the
number added).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from cssm_portal import services as cssm
from cssm_portal.models import (
    AccountAccess,
    CssmRole,
    LicensePool,
    LicenseTransaction,
    LicenseUsage,
    ProductInstance,
    RegistrationToken,
    SmartAccount,
    TransactionSource,
    VirtualAccount,
)
from gateway_ui.models import AlertRecipient, Appliance, ApplianceAlert, ApplianceLicense
from licensing_core import catalogue, codes, pki, schedules
from licensing_core.clock import clock_freeze, lab_now
from licensing_core.models import Event, EventSide, Lab, LabMembership
from licensing_core.roles import GatewayRole
from licensing_core.trust import certificate_authority, lab_trust

TEMPLATE_HOST = "fleet-template.example.com"
# Licences each fleet appliance requests (besides the base licences).
REQUESTED_CODES = {"case", "VOF"}
DEFAULT_PASSWORD = "smartlab-bench"


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Command(BaseCommand):
    help = "Build a large lab in bulk (product instances, registered appliances, tokens, alerts, events)."

    def add_arguments(self, parser):
        parser.add_argument("--lab", required=True, help="Lab slug (created if missing)")
        parser.add_argument("--appliances", type=int, required=True, help="Product instances to add")
        parser.add_argument(
            "--registered", type=int, default=0, help="How many of them are registered simulated appliances"
        )
        parser.add_argument("--tokens", type=int, default=10)
        parser.add_argument("--alerts", type=int, default=0, help="Instances that failed to connect (open alerts)")
        parser.add_argument("--events", type=int, default=0, help="Extra CSSM event rows")
        parser.add_argument("--va", default="Fleet", help="Virtual account name (created if missing)")
        parser.add_argument("--user", default="bench", help="Benchmark user (SA admin, lab manager)")
        parser.add_argument("--password", default=DEFAULT_PASSWORD)
        parser.add_argument("--batch", type=int, default=5000)
        parser.add_argument("--no-certificates", action="store_true", help="Skip per-instance ID certificates")

    def handle(self, *args, lab: str, appliances: int, registered: int, tokens: int, alerts: int, events: int,
               va: str, user: str, password: str, batch: int, no_certificates: bool, **options):  # fmt: skip
        if appliances < 0 or registered < 0 or tokens < 0 or alerts < 0 or events < 0:
            raise CommandError("Counts must be zero or more.")
        if registered > appliances:
            raise CommandError("--registered cannot be more than --appliances.")
        if alerts > appliances - registered:
            raise CommandError("--alerts cannot be more than the instances that are not registered appliances.")
        if batch < 1:
            raise CommandError("--batch must be 1 or more.")
        started = time.monotonic()
        self.batch = batch
        lab_obj, sa, va_obj, bench_user = self._world(lab, va, user, password)
        now = lab_now(lab_obj)
        self._pools(sa, va_obj, appliances, now)
        done_registered = self._registered(lab_obj, va_obj, registered, now) if registered else 0
        plain = appliances - done_registered
        self._instances(lab_obj, va_obj, plain, alerts, now, certificates=not no_certificates)
        # The usage rows were bulk-created: count them into the pools' in_use.
        cssm.pools_recount(virtual_accounts=[va_obj])
        if alerts:
            # Raise the alerts the rule now holds for (the same path the sweep uses).
            cssm.alerts_refresh(smart_account=sa, now=now)
        self._tokens(lab_obj, va_obj, tokens, now)
        self._events(lab_obj, sa, va_obj, events, now)
        _analyze()
        self.stdout.write(
            f"{lab_obj.slug}: {appliances} product instance(s) in {va_obj.name} ({done_registered} registered "
            f"appliance(s)), {tokens} token(s), {alerts} failing instance(s), {events} extra event(s) "
            f"in {time.monotonic() - started:.1f} s. Log in as {bench_user.username}."
        )

    # --- the world ---------------------------------------------------------------------------------------
    def _world(self, slug: str, va_name: str, username: str, password: str):
        from labs.world import world_seed

        lab = Lab.objects.filter(slug=slug).first()
        if lab is None:
            lab = Lab.objects.create(slug=slug, name=f"Fleet {slug}", description="Built by seed_fleet.")
            world_seed(lab=lab)
            clock_freeze(lab=lab)
            lab.refresh_from_db()
        sa = SmartAccount.objects.filter(lab=lab).order_by("pk").first()
        if sa is None:
            raise CommandError(f"Lab {slug!r} has no Smart Account.")
        va, _ = VirtualAccount.objects.get_or_create(
            smart_account=sa, name=va_name, defaults={"description": "Fleet built by seed_fleet"}
        )
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        if created:
            user.set_password(password)
            user.save()
        LabMembership.objects.update_or_create(
            lab=lab, user=user, defaults={"gateway_role": GatewayRole.ADMINISTRATOR, "is_manager": True}
        )
        AccountAccess.objects.get_or_create(
            user=user, smart_account=sa, virtual_account=None, defaults={"role": CssmRole.SA_ADMIN}
        )
        return lab, sa, va, user

    def _pools(self, sa, va, appliances: int, now) -> None:
        """Enough purchased licences for every instance's usage (an order per tag)."""
        for lic in catalogue.ESA_LICENSES:
            if not (lic.is_base or lic.code in REQUESTED_CODES):
                continue
            pool, _ = LicensePool.objects.get_or_create(virtual_account=va, tag=lic.entitlement_tag)
            add = appliances + 10
            pool.purchased += add
            pool.save(update_fields=["purchased"])
            LicenseTransaction.objects.create(
                smart_account=sa, virtual_account=va, at=now, tag=lic.entitlement_tag, sku=lic.sku,
                license_name=lic.name, quantity=add, source=TransactionSource.ORDER, reference="seed_fleet",
            )  # fmt: skip

    # --- plain product instances ---------------------------------------------------------------------------
    def _instances(self, lab, va, count: int, failing: int, now, *, certificates: bool) -> None:
        if not count:
            return
        trust = lab_trust(lab=lab, now=now)
        ca = certificate_authority(trust)
        key = pki.make_device_key()  # one key pair for the plain instances: each still gets its own certificate
        serial_base = ProductInstance.objects.filter(lab=lab).count() + 1
        tags = [lic.entitlement_tag for lic in catalogue.ESA_LICENSES if lic.code in REQUESTED_CODES]
        # Older than the connect window but inside the renew window: "Failed to Connect".
        stale = now - schedules.INSTANCE_CONNECT_WINDOW - timedelta(days=1)
        done = 0
        for start in range(0, count, self.batch):
            n = min(self.batch, count - start)
            rows = []
            for i in range(start, start + n):
                serial = f"FLT{serial_base + i:09d}"
                udi = catalogue.make_udi("C395", serial)
                name = f"esa{serial_base + i:06d}.fleet.example.com"
                cert, expires = "", None
                if certificates:
                    csr = pki.make_csr(key_pem=key, common_name=name, udi=udi)
                    cert_b = pki.issue_id_certificate(ca=ca, csr_pem=csr, now=now)
                    cert, expires = cert_b.decode(), now + pki.ID_CERT_VALIDITY
                contact = stale if i < failing else now
                rows.append(
                    ProductInstance(
                        lab=lab, virtual_account=va, piid=uuid.uuid4(), udi=udi, name=name, product="ESA",
                        pid="C395", serial=serial, software_version="16.0.0-000", agent_version="1.3.7",
                        certificate_pem=cert, cert_expires_at=expires, registered_at=now, last_contact=contact,
                    )
                )  # fmt: skip
            with transaction.atomic():
                ProductInstance.objects.bulk_create(rows, batch_size=self.batch)
                LicenseUsage.objects.bulk_create(
                    [LicenseUsage(instance=r, tag=t, count=1) for r in rows for t in tags], batch_size=self.batch
                )
                Event.objects.bulk_create(
                    [
                        Event(
                            lab=lab, at=now, side=EventSide.CSSM, kind="cssm.instance.registered",
                            message=f'Product instance "{r.name}" registered to Virtual Account "{va.name}".',
                            smart_account_id=va.smart_account_id, virtual_account_id=va.pk,
                            product_instance_id=r.pk, subject_name=r.name, new=dict.fromkeys(tags, 1),
                        )
                        for r in rows
                    ],
                    batch_size=self.batch,
                )  # fmt: skip
            done += n
            self.stdout.write(f"  {done}/{count} product instances", ending="\r")
            self.stdout.flush()
        self.stdout.write("")

    # --- registered appliances ---------------------------------------------------------------------------
    def _template(self, lab, va, now) -> tuple[Appliance, bool]:
        """One appliance registered and authorized through the real services (and whether it is new)."""
        from labs.scenarios.builder import Builder, cssm_served
        from labs.world import appliance_add

        existing = Appliance.objects.filter(lab=lab, hostname=TEMPLATE_HOST).first()
        if existing is not None and existing.registration_state == "registered":
            return existing, False
        appliance_add(lab=lab, hostname=TEMPLATE_HOST, pid="C395", serial="FLT-TEMPLATE-0001", virtual=False, keys=[])
        b = Builder(lab)
        token = cssm.token_create(
            va=va, actor="seed_fleet", description="Fleet template", expire_days=365, max_uses=None,
            export_controlled=False, now=now,
        ).value  # fmt: skip
        with cssm_served():
            b.enable(TEMPLATE_HOST)
            b.register(TEMPLATE_HOST, token)
            b.request_licenses(TEMPLATE_HOST, REQUESTED_CODES)
        appliance = b.appliance(TEMPLATE_HOST)
        if appliance.registration_state != "registered" or appliance.authorization_state != "authorized":
            raise CommandError(
                f"The template appliance did not register: {appliance.registration_state}/"
                f"{appliance.authorization_state} {appliance.registration_error or appliance.last_auth_reason}"
            )
        return appliance, True

    def _registered(self, lab, va, count: int, now) -> int:
        template, created = self._template(lab, va, now)
        tmpl_instance = ProductInstance.objects.get(lab=lab, udi=template.udi)
        tmpl_usage = list(tmpl_instance.usage.all())
        tmpl_licenses = list(template.licenses.order_by("id"))
        tmpl_alerts = list(template.alerts.order_by("id"))
        tmpl_recipients = list(template.alert_recipients.all())
        tmpl_gw_events = list(Event.objects.filter(appliance_id=template.pk).order_by("id"))
        tmpl_cssm_events = list(Event.objects.filter(product_instance_id=tmpl_instance.pk).order_by("id"))
        trust = lab_trust(lab=lab, now=now)
        ca = certificate_authority(trust)
        first = Appliance.objects.filter(lab=lab, hostname__startswith="gw").count() + 1
        made = 1 if created else 0  # a new template counts as one of the registered appliances
        clones = count - made
        skip = {"id", "hostname", "serial", "device_key_pem", "id_cert_pem", "piid", "vln"}
        fields = [f.attname for f in Appliance._meta.concrete_fields if f.attname not in skip]
        for start in range(0, clones, self.batch):
            n = min(self.batch, clones - start)
            apps, insts = [], []
            for i in range(first + start, first + start + n):
                hostname, serial = f"gw{i:06d}.fleet.example.com", f"FLTGW{i:08d}"
                udi = catalogue.make_udi(template.model_pid, serial)
                key = pki.make_device_key()
                cert = pki.issue_id_certificate(
                    ca=ca, csr_pem=pki.make_csr(key_pem=key, common_name=hostname, udi=udi), now=now
                ).decode()
                piid = uuid.uuid4()
                a = Appliance(**{f: getattr(template, f) for f in fields})
                a.hostname, a.serial, a.device_key_pem, a.id_cert_pem, a.piid = (
                    hostname,
                    serial,
                    key.decode(),
                    cert,
                    str(piid),
                )
                apps.append(a)
                inst = ProductInstance(
                    **{f.attname: getattr(tmpl_instance, f.attname) for f in ProductInstance._meta.concrete_fields
                       if f.attname not in ("id", "piid", "udi", "name", "serial", "certificate_pem")},
                    piid=piid, udi=udi, name=hostname, serial=serial, certificate_pem=cert,
                )  # fmt: skip
                inst.recent_nonces = []
                insts.append(inst)
            with transaction.atomic():
                Appliance.objects.bulk_create(apps, batch_size=self.batch)
                ProductInstance.objects.bulk_create(insts, batch_size=self.batch)
                ApplianceLicense.objects.bulk_create(
                    [_clone(r, appliance_id=a.pk) for a in apps for r in tmpl_licenses], batch_size=self.batch
                )
                ApplianceAlert.objects.bulk_create(
                    [_clone(r, appliance_id=a.pk) for a in apps for r in tmpl_alerts], batch_size=self.batch
                )
                AlertRecipient.objects.bulk_create(
                    [_clone(r, appliance_id=a.pk) for a in apps for r in tmpl_recipients], batch_size=self.batch
                )
                LicenseUsage.objects.bulk_create(
                    [_clone(u, instance_id=p.pk) for p in insts for u in tmpl_usage], batch_size=self.batch
                )
                Event.objects.bulk_create(
                    [_clone(e, appliance_id=a.pk, subject_name=a.hostname, request_id=None)
                     for a in apps for e in tmpl_gw_events]
                    + [_clone(e, product_instance_id=p.pk, subject_name=p.name, request_id=None,
                              message=e.message.replace(TEMPLATE_HOST, p.name))
                       for p in insts for e in tmpl_cssm_events],
                    batch_size=self.batch,
                )  # fmt: skip
            made += n
            self.stdout.write(f"  {made}/{count} registered appliances", ending="\r")
            self.stdout.flush()
        self.stdout.write("")
        return made

    # --- tokens, extra events -----------------------------------------------------------------------------
    def _tokens(self, lab, va, count: int, now) -> None:
        if not count:
            return
        secret = bytes(lab_trust(lab=lab, now=now).token_secret)
        rows = []
        for i in range(count):
            token_id = str(uuid.uuid4())
            rows.append(
                RegistrationToken(
                    virtual_account=va, token_id=token_id,
                    value=codes.token_generate(secret_key=secret, now=now, token_id=token_id),
                    description=f"Fleet token {i + 1}", created_by="seed_fleet", created_at=now - timedelta(minutes=i),
                    expires_at=schedules.token_expiry(now, 365),
                )
            )  # fmt: skip
        RegistrationToken.objects.bulk_create(rows, batch_size=self.batch)

    def _events(self, lab, sa, va, count: int, now) -> None:
        for start in range(0, count, self.batch):
            n = min(self.batch, count - start)
            Event.objects.bulk_create(
                [
                    Event(
                        lab=lab, at=now - timedelta(seconds=start + i), side=EventSide.CSSM, kind="cssm.fleet.note",
                        message=f"Fleet note {start + i + 1}", actor="seed_fleet",
                        smart_account_id=sa.pk, virtual_account_id=va.pk,
                    )
                    for i in range(n)
                ],
                batch_size=self.batch,
            )  # fmt: skip


def _analyze() -> None:
    """Refresh the planner's statistics and visibility map after a bulk load
    (PostgreSQL), as autovacuum would a little later: plans chosen on
    empty-table estimates are not what a real account of this size gets."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    tables = [m._meta.db_table for m in (ProductInstance, LicenseUsage, Event, Appliance, ApplianceLicense,
                                          ApplianceAlert, RegistrationToken, LicensePool)]  # fmt: skip
    with connection.cursor() as cur:
        for table in tables:
            cur.execute(f"VACUUM ANALYZE {table}")


def _clone(obj, **changes):
    """A copy of a model instance without its primary key, with some fields changed."""
    model = type(obj)
    values = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields if not f.primary_key}
    values.update(changes)
    return model(**values)
