"""Queries built and compiled by the ORM once per process, then run with new values.

Every page runs a few queries whose SQL never changes, only their values (the
user, the lab, the Virtual Account). Building a queryset and compiling it
cost several times what the database takes to answer (0.3–0.6 ms each under
the ORM, against 0.1 ms in PostgreSQL), so `run_compiled` compiles
`build(*placeholders)` once, remembers which parameters are the placeholders,
and runs the same SQL with the real values, converting the columns as the ORM
would (SQLite's dates and booleans, JSON)."""

from functools import cache

from django.db import connection

# Stands for an id in a query being compiled (no real id is this large).
_ID_PLACEHOLDER = 987_654_321_987_654


def _placeholder(i: int, kind: type):
    """What stands for the i-th value while a query is compiled: an id no real row has, or a text no real value
    holds (never sent to the database)."""
    return f"\x00placeholder {i}" if kind is str else _ID_PLACEHOLDER - i


@cache
def _compiled(build, types, kinds=(int,)) -> tuple[str, tuple, tuple, list]:
    """`build(*placeholders, types)` compiled: its SQL and parameters, which parameters take which value, and the
    converters of its columns (what the ORM applies to its rows: SQLite's dates and booleans, for one)."""
    qs = build(*(_placeholder(i, kind) for i, kind in enumerate(kinds)), types)
    compiler = qs.query.get_compiler(using=qs.db)
    sql, params = compiler.as_sql()
    value_of = {_placeholder(i, kind): i for i, kind in enumerate(kinds)}
    slots = tuple((n, value_of[p]) for n, p in enumerate(params) if isinstance(p, int | str) and p in value_of)
    if {i for _, i in slots} != set(range(len(kinds))):
        # A value the SQL does not carry as it is (a contains lookup wraps it, a None becomes IS NULL): the
        # compiled query would silently ignore it.
        raise ValueError(f"{build.__name__}: every value must reach the SQL as a parameter of its own")
    converters = compiler.get_converters([col for col, _, _ in compiler.select[: compiler.col_count]])
    return sql, tuple(params), slots, list(converters.items())


def run_compiled(build, *values, types=None) -> list[tuple]:
    """The rows of `build(*values, types)` (a queryset of values_list), compiled once per process for each `types`:
    for a query every page runs with only the values changing, because building and compiling it with the ORM on
    each request cost several times what the database takes to answer it. `build` may filter on the values only
    with lookups that hand them to the SQL as they are (exact, lt, gt, in; not contains, which wraps them)."""
    if not all(type(v) in (int, str) for v in values):
        raise TypeError("run_compiled takes int and str values only")
    sql, params, slots, converters = _compiled(build, types, tuple(type(v) for v in values))
    params = list(params)
    for n, i in slots:
        params[n] = values[i]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if converters:
        rows = [tuple(_converted(list(row), converters)) for row in rows]
    return rows


def _converted(row: list, converters) -> list:
    for pos, (funcs, expression) in converters:
        value = row[pos]
        for convert in funcs:
            value = convert(value, expression, connection)
        row[pos] = value
    return row
