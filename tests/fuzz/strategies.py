"""Hostile form values: long strings, any unicode, control characters, huge numbers, markup."""

from hypothesis import strategies as st

SCRIPT = "<script>alert(1)</script>"
controls = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), min_size=1, max_size=20)
huge_numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**1000]),
).map(str)
odd = st.sampled_from(["", " ", "0", "-1", "1e309", "NaN", "inf", "true", "null", "[]", "{}", "%00", "../..", SCRIPT])
long_text = st.text(min_size=1, max_size=4).map(lambda s: s * 5000)
value = st.one_of(st.text(max_size=200), controls, huge_numbers, odd, long_text)
