"""shared.money and shared.jsonio: money is parsed strictly and written exactly; JSON is read strictly."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import jsonio
from shared.errors import ValidationError
from shared.money import DEFAULT_MAX_AMOUNT, MONEY_PLACES, money_text, parse_money, parse_signed_money

IN_RANGE_MONEY = st.decimals(
    min_value=-DEFAULT_MAX_AMOUNT,
    max_value=DEFAULT_MAX_AMOUNT,
    places=MONEY_PLACES,
    allow_nan=False,
    allow_infinity=False,
)
POSITIVE_MONEY = st.decimals(
    min_value=Decimal("0.0001"),
    max_value=DEFAULT_MAX_AMOUNT,
    places=MONEY_PLACES,
    allow_nan=False,
    allow_infinity=False,
)


# --- parse_money -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, Decimal("1")),
        (100, Decimal("100")),
        (Decimal("0.0001"), Decimal("0.0001")),
        (Decimal("12.3400"), Decimal("12.34")),
        ("42", Decimal("42")),
        ("  7.25 ", Decimal("7.25")),
        ("1e3", Decimal("1000")),
        (DEFAULT_MAX_AMOUNT, DEFAULT_MAX_AMOUNT),
    ],
)
def test_parse_money_accepts_ints_decimals_and_numeric_strings(value, expected):
    amount = parse_money(value, field="amount")
    assert isinstance(amount, Decimal)
    assert amount == expected


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        1.5,
        [],
        {},
        object(),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        "NaN",
        "Infinity",
        "-inf",
        -1,
        Decimal("-0.0001"),
        "-5",
        0,
        Decimal("0"),
        "0",
        "0.0000",
        Decimal("0.00001"),
        "1.23456",
        Decimal("1.00001"),
        DEFAULT_MAX_AMOUNT + Decimal("0.0001"),
        DEFAULT_MAX_AMOUNT + 1,
        "1e10",
        10**30,
        "",
        "   ",
        "abc",
        "1,000",
        "12abc",
        "0x10",
        "1 000",
        "$5",
        "1" * 41,
    ],
)
def test_parse_money_rejects(value):
    with pytest.raises(ValidationError) as caught:
        parse_money(value, field="amount")
    assert caught.value.details == {"field": "amount"}


def test_parse_money_names_the_field_in_its_error():
    with pytest.raises(ValidationError) as caught:
        parse_money("abc", field="initial_balance")
    assert caught.value.details == {"field": "initial_balance"}
    assert "initial_balance" in caught.value.message


@pytest.mark.parametrize("value", [0, Decimal("0"), "0", "0.00"])
def test_parse_money_allows_zero_only_when_asked(value):
    assert parse_money(value, field="balance", allow_zero=True) == 0
    with pytest.raises(ValidationError):
        parse_money(value, field="balance")


def test_parse_money_allow_zero_still_rejects_negative():
    with pytest.raises(ValidationError):
        parse_money(Decimal("-0.0001"), field="balance", allow_zero=True)


def test_parse_money_respects_a_custom_maximum():
    assert parse_money(50, field="amount", max_amount=Decimal(50)) == 50
    with pytest.raises(ValidationError):
        parse_money(Decimal("50.0001"), field="amount", max_amount=Decimal(50))


@given(POSITIVE_MONEY)
def test_parse_money_accepts_every_in_range_amount_exactly(amount):
    assert parse_money(amount, field="amount") == amount
    assert parse_money(str(amount), field="amount") == amount


# --- parse_signed_money ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, Decimal(5)),
        (-5, Decimal(-5)),
        ("-0.0001", Decimal("-0.0001")),
        (Decimal("-12.5"), Decimal("-12.5")),
        (-DEFAULT_MAX_AMOUNT, -DEFAULT_MAX_AMOUNT),
    ],
)
def test_parse_signed_money_accepts_both_signs(value, expected):
    assert parse_signed_money(value, field="change") == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        "-0",
        Decimal("-0.00001"),
        -DEFAULT_MAX_AMOUNT - 1,
        DEFAULT_MAX_AMOUNT + 1,
        Decimal("-NaN"),
        Decimal("-Infinity"),
        "-Infinity",
        True,
        None,
        "abc",
        "--5",
    ],
)
def test_parse_signed_money_rejects(value):
    with pytest.raises(ValidationError):
        parse_signed_money(value, field="change")


@given(POSITIVE_MONEY)
def test_parse_signed_money_is_symmetric(amount):
    assert parse_signed_money(-amount, field="change") == -parse_signed_money(amount, field="change")


# --- money_text ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("1000"), "1000.00"),
        (Decimal("1000.0000"), "1000.00"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("0.1234"), "0.1234"),
        (Decimal("0.1"), "0.10"),
        (Decimal("1.10"), "1.10"),
        (Decimal("0"), "0.00"),
        (Decimal("-5.5"), "-5.50"),
        (Decimal("999999999.9999"), "999999999.9999"),
    ],
)
def test_money_text_is_exact_with_at_least_two_places(amount, text):
    assert money_text(amount) == text


def test_money_text_refuses_non_decimals():
    with pytest.raises(AssertionError):
        money_text(1.5)  # type: ignore[arg-type]


@given(IN_RANGE_MONEY)
def test_money_text_round_trips_exactly(amount):
    text = money_text(amount)
    whole, _, fraction = text.partition(".")
    assert Decimal(text) == amount
    assert len(fraction) >= 2
    assert "e" not in text.lower()


# --- jsonio.loads ----------------------------------------------------------------------------------------------


def test_loads_reads_floats_as_decimals_and_ints_as_ints():
    value = jsonio.loads('{"amount": 0.1, "count": 3, "nested": [1.25, 2]}')
    assert value == {"amount": Decimal("0.1"), "count": 3, "nested": [Decimal("1.25"), 2]}
    assert isinstance(value["amount"], Decimal)
    assert isinstance(value["count"], int)


def test_loads_accepts_bytes():
    assert jsonio.loads(b'{"a": 1.5}') == {"a": Decimal("1.5")}


@pytest.mark.parametrize(
    "text",
    [
        '{"amount": NaN}',
        '{"amount": Infinity}',
        '{"amount": -Infinity}',
        "NaN",
        "[Infinity]",
    ],
)
def test_loads_rejects_nan_and_infinity(text):
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(text)


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"x": {"b": 1, "b": 1}}', '[{"k": 1, "k": null}]'])
def test_loads_rejects_duplicate_keys(text):
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(text)


@pytest.mark.parametrize("text", ["", "{", "{'a': 1}", '{"a": 1,}', "[1 2]", "nul", '{"a": 01}'])
def test_loads_rejects_malformed_text(text):
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(text)


def test_loads_rejects_invalid_utf8():
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(b'{"a": "\xff\xfe\xfa"}')


def test_loads_bounds_nesting():
    shallow = "[" * 10 + "]" * 10
    assert jsonio.loads(shallow) is not None
    deep = "[" * (jsonio.MAX_NESTING_DEPTH + 5) + "]" * (jsonio.MAX_NESTING_DEPTH + 5)
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(deep)
    deep_objects = '{"a":' * 100 + "1" + "}" * 100
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(deep_objects)


def test_loads_turns_recursion_exhaustion_into_an_input_error():
    very_deep = "[" * 200_000 + "]" * 200_000
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(very_deep)


def test_loads_bounds_integer_length():
    assert jsonio.loads("9" * 40) == int("9" * 40)
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads("9" * 41)
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads('{"amount": ' + "1" * 5000 + "}")


def test_json_input_error_is_a_value_error():
    assert issubclass(jsonio.JsonInputError, ValueError)


# --- jsonio.dumps ----------------------------------------------------------------------------------------------


def test_dumps_writes_decimals_as_exact_numbers():
    text = jsonio.dumps({"amount": Decimal("0.1"), "big": Decimal("999999999.9999"), "round": Decimal("100")})
    assert text == '{"amount":0.10,"big":999999999.9999,"round":100.00}'
    assert json.loads(text, parse_float=Decimal) == {
        "amount": Decimal("0.1"),
        "big": Decimal("999999999.9999"),
        "round": Decimal("100"),
    }


def test_dumps_writes_uuid_datetime_and_date_as_strings():
    identifier = uuid.uuid4()
    moment = datetime(2024, 5, 17, 12, 30, 5, tzinfo=UTC)
    text = jsonio.dumps({"id": identifier, "at": moment, "on": date(2024, 5, 17)})
    assert json.loads(text) == {"id": str(identifier), "at": moment.isoformat(), "on": "2024-05-17"}


def test_dumps_writes_plain_values_like_json():
    value = {"s": 'é"x', "i": 3, "t": True, "f": False, "n": None, "l": [1, "a"], "tuple": (1, 2), 5: "key"}
    assert json.loads(jsonio.dumps(value)) == {
        "s": 'é"x',
        "i": 3,
        "t": True,
        "f": False,
        "n": None,
        "l": [1, "a"],
        "tuple": [1, 2],
        "5": "key",
    }


def test_dumps_writes_enums_by_value():
    from accounts_service.domain import ParticipantState

    assert jsonio.dumps({"state": ParticipantState.COMMITTED}) == '{"state":"committed"}'


@pytest.mark.parametrize("value", [1.5, {"amount": 0.1}, [1, 2.0], float("nan")])
def test_dumps_refuses_floats(value):
    with pytest.raises(TypeError):
        jsonio.dumps(value)


def test_dumps_refuses_unknown_objects():
    with pytest.raises(TypeError):
        jsonio.dumps({"x": object()})


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_dumps_refuses_non_finite_decimals(value):
    with pytest.raises((TypeError, ValueError)):
        jsonio.dumps({"amount": value})


@given(IN_RANGE_MONEY)
def test_dumps_then_loads_round_trips_money_exactly(amount):
    value = jsonio.loads(jsonio.dumps({"amount": amount, "list": [amount]}))
    assert value["amount"] == amount
    assert value["list"] == [amount]
    assert isinstance(value["amount"], Decimal)


@pytest.mark.parametrize("text", ["1_000", "١٢٣", "１２", " ", "1.", ".5", "+5", "0x10"])
def test_parse_money_accepts_only_plain_ascii_decimal_text(text):
    with pytest.raises(ValidationError):
        parse_money(text, field="amount")


# --- amounts bounded as written ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1." + "0" * 16_400,
        "1.00000",
        "0.00000",
        "1E-5",
        "0E-20",
        "1" * 16,
        "1" * 15 + ".5",
        "1e15",
        "-1.00000",
    ],
)
def test_an_amount_written_with_too_many_places_or_digits_is_refused(text):
    """Found: `1.` and 16,400 zeros equals 1, passed every check and made asyncpg fail -> 500."""
    for value in (Decimal(text), text):
        if isinstance(value, str) and len(value) > 40:
            value = jsonio.loads(value)  # the way a JSON body delivers it
        with pytest.raises(ValidationError) as caught:
            parse_signed_money(value, field="amount")
        assert caught.value.details == {"field": "amount"}


@pytest.mark.parametrize("text", ["1.0000", "12.3400", "999999999.9999", "1e3", "1E+2"])
def test_an_amount_within_the_written_bounds_is_taken(text):
    assert parse_money(text, field="amount") == Decimal(text)


# --- the codec (msgspec) keeps money exact and the strict rules it has no switch for ----------------------------


def test_tenths_add_up_exactly_after_a_round_trip():
    """0.1 + 0.2 is 0.30000000000000004 in binary floating point; read as Decimal it is 0.3."""
    value = jsonio.loads('{"a": 0.1, "b": 0.2}')
    assert value["a"] + value["b"] == Decimal("0.3")
    assert jsonio.dumps({"sum": value["a"] + value["b"]}) == '{"sum":0.30}'


@pytest.mark.parametrize(
    "text", ["999999999999999.9999", "-999999999999999.9999", "123456789012345.6789", "0.0001", "9007199254740993.5"]
)
def test_nineteen_digit_amounts_round_trip_exactly(text):
    """NUMERIC(19,4)'s widest values, and one past float's 2**53: read and written digit for digit."""
    value = jsonio.loads('{"amount": %s}' % text)["amount"]
    assert isinstance(value, Decimal)
    assert value == Decimal(text)
    assert jsonio.loads(jsonio.dumps({"amount": value}))["amount"] == Decimal(text)
    assert text in jsonio.dumps({"amount": value})


def test_a_huge_exponent_stays_a_finite_decimal_for_the_money_rules_to_refuse():
    value = jsonio.loads('{"amount": 1e400}')["amount"]
    assert isinstance(value, Decimal) and value.is_finite()
    with pytest.raises(ValidationError):
        parse_money(value, field="amount")


@pytest.mark.parametrize(
    "text",
    [
        '{"a:b": 1, "c": "x:y"}',
        '{"a\\"": 1, "b": "\\"::"}',
        '[{"k": 1}, {"k": 2}]',
        '{"a": {"a": {"a": 1}}}',
        '"::"',
        '{"a\\u003a": 1, "b": "\\u003a:"}',
        '{"at": "12:30:05", "b": ["x:", {"c": ":"}]}',
    ],
)
def test_colons_and_repeated_names_in_other_objects_are_no_duplicate(text):
    assert jsonio.loads(text) == json.loads(text, parse_float=Decimal)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": {"b:": 1}, "a": 2}',
        '{"x": [{"k": "a:b", "k": 1}]}',
        '{"\\u0061": 1, "a": 2}',
        '{"a": "\\u003a:", "a": 1}',
        '{"at": "12:30", "at": "12:31"}',
    ],
)
def test_duplicate_keys_are_found_beside_colons_in_strings(text):
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(text)


@pytest.mark.parametrize("text", ['{"a": "x\\u0000y"}', '{"a\\u0000": 1}', '["\\ud800"]', '{"a": "\\udc00x"}'])
def test_text_postgresql_cannot_store_is_refused(text):
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(text)


@pytest.mark.parametrize("text", ['{"a": "\\\\u0000"}', '["\\ud83d\\ude00"]', '{"a": "\\\\ud800"}'])
def test_escapes_that_only_look_risky_are_kept(text):
    assert jsonio.loads(text) == json.loads(text)


def test_a_long_fraction_or_exponent_is_not_a_long_integer():
    assert jsonio.loads("[1." + "0" * 60 + "]") == [Decimal("1." + "0" * 60)]
    assert jsonio.loads('["' + "9" * 60 + '"]') == ["9" * 60]
    assert jsonio.loads("[-" + "9" * 40 + "]") == [-int("9" * 40)]
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads("[-" + "9" * 41 + "]")


def test_dumps_bytes_is_dumps_in_utf8():
    value = {"name": "Zoë", "amount": Decimal("1.5"), "id": uuid.UUID(int=1), "at": datetime(2024, 1, 2, tzinfo=UTC)}
    assert jsonio.dumps_bytes(value) == jsonio.dumps(value).encode("utf-8")
    assert json.loads(jsonio.dumps(value)) == {
        "name": "Zoë",
        "amount": 1.5,
        "id": "00000000-0000-0000-0000-000000000001",
        "at": "2024-01-02T00:00:00+00:00",
    }


def test_an_exponent_of_many_digits_is_no_integer():
    assert jsonio.loads("[1e-" + "0" * 50 + "1]") == [Decimal("1e-" + "0" * 50 + "1")]


# No lone surrogates: the standard library reads them, we refuse them on purpose (PostgreSQL cannot store
# them; test_text_postgresql_cannot_store_is_refused above).
STORABLE_TEXT = st.text(alphabet=st.characters(min_codepoint=32, exclude_categories=("Cs",)))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | STORABLE_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(alphabet=':ab"\\ é', max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES, st.booleans())
def test_loads_reads_what_the_standard_library_reads(value, escape_everything):
    text = json.dumps(value, ensure_ascii=escape_everything)
    assert jsonio.loads(text) == json.loads(text)


@given(st.dictionaries(st.text(alphabet=':ab"\\', max_size=3), st.text(alphabet=":x", max_size=3), min_size=1))
def test_a_repeated_key_is_found_whatever_colons_the_text_holds(value):
    key = next(iter(value))
    text = json.dumps(value)[:-1] + ", " + json.dumps(key) + ": 1}"
    with pytest.raises(jsonio.JsonInputError):
        jsonio.loads(text)
