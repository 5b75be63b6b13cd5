"""The portal's table widgets as tags: sortable header cells, the filter box and the pager.

They were includes (`_th.html` once per header cell, `_filter.html`, `_pager.html`), each rendered with a
context push and a dozen variable lookups: a large share of a list page's template time. The tags write the
same HTML from the table (`t`, a `selectors.Table`) and `table_id` in the context.
"""

from types import SimpleNamespace

from django import template
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join

register = template.Library()

# What a tag sees when the context holds no table (a partial requested where there is none): the includes
# rendered their empty form then, so the tags do too.
_NO_TABLE = SimpleNamespace(sort=None, direction="", params="", q="", page=None)


def _query(t):
    """The start of a link's query string: "?" and the table's kept parameters, if any."""
    return format_html("?{}&", t.params) if t.params else "?"


@register.simple_tag(takes_context=True)
def sort_th(context, key: str, label: str):
    """A header cell that sorts the table by `key` (the other direction when it already does). Ends with the
    newline the include had, so pages stay byte for byte what they were."""
    t = context.get("t") or _NO_TABLE
    here, asc = t.sort == key, t.direction == "asc"
    return format_html(
        '<th scope="col" {}><a href="{}sort={}&dir={}" hx-get="{}sort={}&dir={}" hx-target="#{}" hx-swap="outerHTML"'
        ' hx-push-url="true">{}{}</a></th>\n',
        format_html('aria-sort="{}"', "ascending" if asc else "descending") if here else "",
        *(_query(t), key, "desc" if here and asc else "asc") * 2,
        context.get("table_id", ""),
        label,
        (" ▲" if asc else " ▼") if here else "",
    )


@register.simple_tag(takes_context=True)
def table_filter(context, placeholder: str = ""):
    """The filter box above a table: a GET form whose answer htmx swaps in for the table."""
    t = context.get("t") or _NO_TABLE
    path, table_id = context["request"].path, context.get("table_id", "")
    return format_html(
        '<form method="get" action="{}" class="filter" hx-get="{}" hx-target="#{}" hx-swap="outerHTML"'
        ' hx-push-url="true">\n'
        "  {}\n"
        '  <label for="{}-q">Filter:</label>\n'
        '  <input type="search" id="{}-q" name="q" value="{}" placeholder="{}">\n'
        '  <button type="submit" class="btn">Filter</button>\n'
        "</form>\n",
        path,
        path,
        table_id,
        format_html_join("", '<input type="hidden" name="{}" value="{}">', context.get("extra_params") or ()),
        table_id,
        table_id,
        t.q,
        placeholder or "Search",
    )


@register.simple_tag(takes_context=True)
def pager(context):
    """ "Showing a–b of n Records" and the links to the previous and next pages of a table."""
    t = context.get("t") or _NO_TABLE
    page = t.page
    paginator = page.paginator if page is not None else None
    if paginator is not None and paginator.count:
        total = f"more than {paginator.known_display}" if paginator.capped else localize(paginator.count)
        showing = format_html(
            "Showing {}–{} of {} Records", localize(page.start_index()), localize(page.end_index()), total
        )
    else:
        showing = "No Records Found"
    pages = ""
    if paginator is not None and page.has_other_pages():
        link = '<a href="{}{}" hx-get="{}{}" hx-target="#{}" hx-swap="outerHTML" hx-push-url="true" rel="{}">{}</a>'
        query = format_html("{}sort={}&dir={}&page=", _query(t), t.sort, t.direction)
        table_id = context.get("table_id", "")
        prev = next_ = ""
        if page.has_previous():
            n = localize(page.previous_page_number())
            prev = format_html(link, query, n, query, n, table_id, "prev", "‹ Previous")
        if page.has_next():
            n = localize(page.next_page_number())
            next_ = format_html(link, query, n, query, n, table_id, "next", "Next ›")
        of = f"more than {localize(paginator.known_pages)}" if paginator.capped else localize(paginator.num_pages)
        pages = format_html(
            '\n  <span class="pages">\n    {}\n    Page {} of {}\n    {}\n  </span>\n  ',
            prev,
            localize(page.number),
            of,
            next_,
        )
    return format_html('<div class="pager">\n  <span class="muted">{}</span>\n  {}\n</div>\n', showing, pages)
