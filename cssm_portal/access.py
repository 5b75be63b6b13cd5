"""Who may see and change what in the portal (domain-notes §5.12, §8.2).

Every view builds a `Portal` from the URL: it 404s for labs, Smart Accounts
and Virtual Accounts outside the user's roles, so nothing else leaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet
from django.http import Http404

from cssm_portal.models import AccountAccess, CssmRole, SmartAccount, VirtualAccount
from licensing_core.clock import lab_now
from licensing_core.compiled import run_compiled
from licensing_core.models import Lab

SA_ROLES = {CssmRole.SA_ADMIN, CssmRole.SA_USER, CssmRole.SA_VIEWER}
EDIT_ROLES = {CssmRole.SA_ADMIN, CssmRole.SA_USER, CssmRole.VA_ADMIN, CssmRole.VA_USER}
RANK = {
    CssmRole.SA_ADMIN: 6,
    CssmRole.SA_USER: 5,
    CssmRole.VA_ADMIN: 4,
    CssmRole.VA_USER: 3,
    CssmRole.SA_VIEWER: 2,
    CssmRole.VA_VIEWER: 1,
}


class Forbidden(Exception):
    """A change the user's role does not allow; the message says why."""


@dataclass
class Portal:
    lab: Lab
    user: object
    smart_account: SmartAccount
    accounts: list[SmartAccount]
    sa_role: str | None
    va_roles: dict[int, str]
    virtual_accounts: list[VirtualAccount]
    now: datetime
    current_va: VirtualAccount | None = None
    extra: dict = field(default_factory=dict)

    @property
    def role_label(self) -> str:
        roles = [self.sa_role] if self.sa_role else list(self.va_roles.values())
        best = max(roles, key=lambda r: RANK[r])
        return CssmRole(best).label

    @property
    def is_sa_admin(self) -> bool:
        return self.sa_role == CssmRole.SA_ADMIN

    @property
    def read_only(self) -> bool:
        return not any(self.can_edit(va) for va in self.virtual_accounts)

    def role_for(self, va: VirtualAccount) -> str | None:
        return self.sa_role or self.va_roles.get(va.pk)

    def can_edit(self, va: VirtualAccount) -> bool:
        return self.role_for(va) in EDIT_ROLES

    def va(self, va_id: int) -> VirtualAccount:
        for va in self.virtual_accounts:
            if va.pk == va_id:
                self.current_va = va
                return va
        raise Http404("No such Virtual Account.")

    def require_edit(self, va: VirtualAccount) -> None:
        if not self.can_edit(va):
            role = self.role_for(va)
            raise Forbidden(
                f"Your role ({CssmRole(role).label if role else 'none'}) can view Virtual Account "
                f'"{va.name}" but not change it.'
            )

    def require_sa_admin(self) -> None:
        if not self.is_sa_admin:
            raise Forbidden("Only a Smart Account Administrator can do this.")

    def require_any_edit(self) -> None:
        if self.read_only:
            raise Forbidden(f"Your role ({self.role_label}) is read-only.")


def lab_for(user, lab_slug: str) -> Lab:
    lab = Lab.objects.filter(slug=lab_slug, memberships__user=user).first()
    if lab is None:
        raise Http404("No such lab.")
    return lab


# The columns the portal reads: every column of the Smart Accounts and Virtual Accounts (pages and services read
# them), the lab's id, slug and clock only (not its JSON `faults`, which nothing in the portal reads; a deferred
# column loads on first use, as with .only()).
_SA_FIELDS = [f.attname for f in SmartAccount._meta.concrete_fields]
_LAB_FIELDS = [
    f.attname
    for f in Lab._meta.concrete_fields
    if f.attname in {"id", "slug", "clock_offset", "clock_frozen_at", "clock_floor"}
]
_VA_FIELDS = [f.attname for f in VirtualAccount._meta.concrete_fields]
_SA_AT = 2  # (virtual_account_id, role, *Smart Account, *lab)
_LAB_AT = _SA_AT + len(_SA_FIELDS)


def _access_rows(user_id: int, lab_slug: str, _types) -> QuerySet:
    """The user's roles in the lab's Smart Accounts with each account and the lab; none unless they are a member."""
    return AccountAccess.objects.filter(
        user_id=user_id, smart_account__lab__slug=lab_slug, smart_account__lab__memberships__user_id=user_id
    ).values_list(
        "virtual_account_id",
        "role",
        *(f"smart_account__{f.name}" for f in SmartAccount._meta.concrete_fields),
        *(f"smart_account__lab__{f}" for f in _LAB_FIELDS),
    )


def _virtual_accounts(sa_id: int, _types) -> QuerySet:
    return VirtualAccount.objects.filter(smart_account_id=sa_id).values_list(*_VA_FIELDS)


def portal_for(user, lab_slug: str, sa_id: int) -> Portal:
    # The lab, the membership check and the user's roles in one query, the Virtual Accounts in another, both compiled
    # once per process (the ORM took longer to build them than the database to answer); lab_for only on the way to
    # a 404, for its message.
    rows = run_compiled(_access_rows, user.pk, lab_slug)
    if not rows:
        lab_for(user, lab_slug)
        raise Http404("No such Smart Account.")
    lab = Lab.from_db(DEFAULT_DB_ALIAS, _LAB_FIELDS, rows[0][_LAB_AT:])  # one Lab object for the whole page
    by_pk: dict[int, SmartAccount] = {}
    sa_roles, va_roles = [], {}
    for row in rows:
        account_id = row[_SA_AT]
        if account_id not in by_pk:
            by_pk[account_id] = account = SmartAccount.from_db(DEFAULT_DB_ALIAS, _SA_FIELDS, row[_SA_AT:_LAB_AT])
            account.lab = lab
        if account_id == sa_id:
            va_id, role = row[0], row[1]
            if va_id is None:
                sa_roles.append(role)
            else:
                va_roles[va_id] = role
    if sa_id not in by_pk:
        raise Http404("No such Smart Account.")
    sa = by_pk[sa_id]
    accounts = sorted(sorted(by_pk.values(), key=lambda a: a.pk), key=lambda a: a.name)
    sa_role = max(sa_roles, key=lambda r: RANK[r]) if sa_roles else None
    vas = [VirtualAccount.from_db(DEFAULT_DB_ALIAS, _VA_FIELDS, row) for row in run_compiled(_virtual_accounts, sa.pk)]
    if sa_role is None:
        vas = [va for va in vas if va.pk in va_roles]
    return Portal(
        lab=lab,
        user=user,
        smart_account=sa,
        accounts=accounts,
        sa_role=sa_role,
        va_roles=va_roles,
        virtual_accounts=vas,
        now=lab_now(lab),
    )
