"""{% url %} for the portal's templates without a reverse() per link: `{% load cssm_urls %}` replaces the
built-in tag in the template that loads it (same syntax, same result).

A page's links are a handful of routes filled in with a lab slug, pks and PIIDs (Product Instances: four
links per row), and reverse() walks the URL resolver each time. `fast_reverse` reverses each route once per
process with sample arguments and then only fills in the real ones. Arguments it cannot vouch for (keyword
arguments, strings a slug would not match, routes outside cssm with arguments) go through reverse()."""

import re
from functools import cache
from uuid import UUID

from django import template
from django.template.defaulttags import URLNode
from django.template.defaulttags import url as builtin_url
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils.html import conditional_escape

register = template.Library()

_SLUG = re.compile(r"[-a-zA-Z0-9_]+\Z")


def _kind(arg) -> str | None:
    """The sample an argument stands for, or None when only reverse() can check it."""
    if isinstance(arg, bool):
        return None
    if isinstance(arg, int):
        return "int" if arg >= 0 else None
    if isinstance(arg, UUID):
        return "uuid"
    if isinstance(arg, str) and _SLUG.match(arg):
        return "slug"
    return None


def _sample(kind: str, i: int):
    # Values no real lab slug, pk or PIID takes, so each is found once in the reversed URL.
    return {"int": 730_000_000_000 + i, "uuid": UUID(int=0x5A3B1E << 96 | i), "slug": f"zq{i}sample"}[kind]


@cache
def _pieces(name: str, kinds: tuple[str, ...], prefix: str) -> tuple[str, ...] | None:
    """The route's URL around its arguments, or None when the samples do not reverse (a converter that
    wants another kind: reverse() then decides on the real values). `prefix` keys the script prefix."""
    samples = [str(_sample(k, i)) for i, k in enumerate(kinds)]
    try:
        rest = reverse(name, args=samples)
    except NoReverseMatch:
        return None
    pieces = []
    for s in samples:
        before, found, rest = rest.partition(s)
        if not found:
            return None
        pieces.append(before)
    return (*pieces, rest)


def fast_reverse(name: str, args=()) -> str:
    """reverse(name, args=args), from a per-process template of the route when it is safe to."""
    kinds = tuple(_kind(a) for a in args)
    pieces = None
    if None not in kinds and (not args or name.startswith("cssm:")):
        pieces = _pieces(name, kinds, get_script_prefix())
    if pieces is None:
        return reverse(name, args=args)
    out = [pieces[0]]
    for arg, piece in zip(args, pieces[1:], strict=True):
        out.append(str(arg))
        out.append(piece)
    return "".join(out)


class RowReverse:
    """reverse(name, args=[*args, last]) for the many rows of a table, whose links differ in `last` only (a pk,
    a PIID): the URL around it is built once per request and each row's link is a concatenation. Arguments it
    cannot vouch for go through reverse(), as with fast_reverse."""

    __slots__ = ("name", "args", "_split")

    def __init__(self, name: str, args=()) -> None:
        self.name, self.args, self._split = name, list(args), {}

    def _around(self, kind: str | None) -> tuple[str, str] | None:
        kinds = (*(_kind(a) for a in self.args), kind)
        if None in kinds or not self.name.startswith("cssm:"):
            return None
        pieces = _pieces(self.name, kinds, get_script_prefix())
        if pieces is None:
            return None
        head = pieces[0] + "".join(str(a) + p for a, p in zip(self.args, pieces[1:-1], strict=True))
        return head, pieces[-1]

    def __call__(self, last) -> str:
        kind = _kind(last)
        try:
            around = self._split[kind]
        except KeyError:
            around = self._split[kind] = self._around(kind)
        if around is None:
            return reverse(self.name, args=[*self.args, last])
        return f"{around[0]}{last}{around[1]}"


class FastURLNode(URLNode):
    def render(self, context):
        if self.kwargs:
            return super().render(context)
        name = self.view_name.resolve(context)
        args = [arg.resolve(context) for arg in self.args]
        url = ""
        try:
            url = fast_reverse(name, args)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    node = builtin_url(parser, token)
    node.__class__ = FastURLNode
    return node
