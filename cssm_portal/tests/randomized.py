"""A random sequence of the services that write licence usage, for the
consistency tests (in_use, targeted alert refresh): agents register, renew with
random usage, deregister and are removed or moved; reservations are made,
updated, confirmed, cancelled and returned; licences move between accounts;
the lab clock moves on."""

from __future__ import annotations

import random
from datetime import timedelta

from cssm_portal import services
from cssm_portal.models import ProductInstance, Reservation, VirtualAccount
from cssm_portal.services import ServiceError
from licensing_core import catalogue, codes
from licensing_core.clock import clock_advance, lab_now
from licensing_core.trust import lab_trust

ESA_TAGS = [lic.entitlement_tag for lic in catalogue.ESA_LICENSES if not lic.is_base][:6]


class Driver:
    def __init__(self, *, seed: int, lab, account, make_agent):
        self.rng = random.Random(seed)
        self.lab, self.account, self.make_agent = lab, account, make_agent
        self.vas = list(VirtualAccount.objects.filter(smart_account=account).order_by("pk"))
        esa = next(va for va in self.vas if va.name == "ESA")
        self.token = services.token_create(
            va=esa, actor="rnd", description="", expire_days=365, max_uses=None, export_controlled=False, now=self.now
        )
        self.agents = []
        self.serials = 0
        self.log: list[str] = []

    @property
    def now(self):
        return lab_now(self.lab)

    def _usage(self):
        tags = self.rng.sample(ESA_TAGS, self.rng.randint(0, 3))
        return [{"tag": t, "count": self.rng.randint(0, 3)} for t in tags]

    def _reserving(self):
        return list(ProductInstance.objects.filter(lab=self.lab, reservation__isnull=False).order_by("pk"))

    def step(self) -> str:
        ops = [self.register] * 3 + [self.authorize] * 6 + [self.deregister, self.remove, self.transfer]
        ops += [self.reserve, self.reservation_change, self.license_transfer, self.time_passes]
        op = self.rng.choice(ops)
        done = op()
        self.log.append(f"{op.__name__}: {done}")
        return op.__name__

    def register(self):
        if self.agents and self.rng.random() < 0.2:
            agent = self.rng.choice(self.agents)
            return agent.register(self.token.value, force=True)[0]
        self.serials += 1
        # Now and then a second product with the same serial (Duplicate Licenses).
        pid = "C100V" if self.agents and self.rng.random() < 0.2 else "C395"
        serial = self.rng.choice(self.agents).serial if pid == "C100V" else f"RND{self.serials:05d}"
        agent = self.make_agent(pid=pid, serial=serial)
        status = agent.register(self.token.value)[0]
        if status == 200:
            self.agents.append(agent)
        return status

    def authorize(self):
        if not self.agents:
            return None
        agent = self.rng.choice(self.agents)
        return agent.send("authorize", {"usage": self._usage()})[0]

    def deregister(self):
        if not self.agents:
            return None
        agent = self.agents.pop(self.rng.randrange(len(self.agents)))
        return agent.send("deregister", {})[0]

    def remove(self):
        instances = list(ProductInstance.objects.filter(lab=self.lab).order_by("pk"))
        if not instances:
            return None
        inst = self.rng.choice(instances)
        return_code = ""
        if hasattr(inst, "reservation"):
            secret = bytes(lab_trust(lab=self.lab, now=self.now).return_code_secret)
            return_code = codes.return_code_generate(secret=secret, piid=str(inst.piid), udi=inst.udi)
        services.instance_remove(instance=inst, actor="rnd", now=self.now, return_code=return_code)
        return inst.name

    def transfer(self):
        instances = list(ProductInstance.objects.filter(lab=self.lab).order_by("pk"))
        if not instances:
            return None
        inst = self.rng.choice(instances)
        target = self.rng.choice([va for va in self.vas if va.pk != inst.virtual_account_id])
        try:
            services.instance_transfer(instance=inst, target=target, actor="rnd", now=self.now)
        except ServiceError as exc:
            return exc.reason
        return target.name

    def reserve(self):
        self.serials += 1
        va = self.token.virtual_account if self.rng.random() < 0.7 else self.rng.choice(self.vas)
        quantities = {t: self.rng.randint(1, 2) for t in self.rng.sample(ESA_TAGS, 2)}
        try:
            services.reservation_authorize(
                va=va,
                request_code=codes.request_code_generate(pid="C395", serial=f"RSV{self.serials:05d}"),
                reservation_type="SPECIFIC",
                quantities=quantities,
                actor="rnd",
                now=self.now,
            )
        except ServiceError as exc:
            return exc.reason
        return quantities

    def reservation_change(self):
        reserving = self._reserving()
        if not reserving:
            return None
        inst = self.rng.choice(reserving)
        reservation = Reservation.objects.get(instance=inst)
        try:
            if reservation.pending and self.rng.random() < 0.5:
                code = codes.confirmation_code(reservation.pending_authorization_code)
                services.reservation_confirm(instance=inst, confirmation_code=code, actor="rnd", now=self.now)
                return "confirmed"
            if reservation.pending:
                services.reservation_cancel_update(instance=inst, actor="rnd", now=self.now)
                return "cancelled"
            quantities = {t: self.rng.randint(1, 3) for t in self.rng.sample(ESA_TAGS, 2)}
            services.reservation_update(instance=inst, quantities=quantities, actor="rnd", now=self.now)
            return quantities
        except ServiceError as exc:
            return exc.reason

    def license_transfer(self):
        source, target = self.rng.sample(self.vas, 2)
        pools = list(source.pools.filter(purchased__gt=0).order_by("pk"))
        if not pools:
            return None
        pool = self.rng.choice(pools)
        try:
            services.license_transfer(
                source=source, target=target, tag=pool.tag, quantity=self.rng.randint(1, 3), actor="rnd", now=self.now
            )
        except ServiceError as exc:
            return exc.reason
        return pool.tag

    def time_passes(self):
        days = self.rng.choice([1, 10, 31])
        clock_advance(lab=self.lab, by=timedelta(days=days))
        return days
