"""Who may see and change what in the portal (domain-notes §5.12, §8.2).

Every view builds a `Portal` from the URL: it 404s for labs, Smart Accounts
and Virtual Accounts outside the user's roles, so nothing else leaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.http import Http404

from cssm_portal.models import AccountAccess, CssmRole, SmartAccount, VirtualAccount
from licensing_core.clock import lab_now
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


def portal_for(user, lab_slug: str, sa_id: int) -> Portal:
    # The lab, the membership check and the user's roles in one query; lab_for only on the way to a 404,
    # for its message.
    rows = list(
        AccountAccess.objects.filter(
            user=user, smart_account__lab__slug=lab_slug, smart_account__lab__memberships__user=user
        ).select_related("smart_account__lab")
    )
    if not rows:
        lab_for(user, lab_slug)
        raise Http404("No such Smart Account.")
    lab = rows[0].smart_account.lab
    for r in rows:
        r.smart_account.lab = lab  # one Lab object for the whole page
    accounts = sorted({r.smart_account for r in rows}, key=lambda a: a.name)
    mine = [r for r in rows if r.smart_account_id == sa_id]
    if not mine:
        raise Http404("No such Smart Account.")
    sa = mine[0].smart_account
    sa_roles = [r.role for r in mine if r.virtual_account_id is None]
    sa_role = max(sa_roles, key=lambda r: RANK[r]) if sa_roles else None
    va_roles = {r.virtual_account_id: r.role for r in mine if r.virtual_account_id is not None}
    vas = list(VirtualAccount.objects.filter(smart_account=sa))
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
