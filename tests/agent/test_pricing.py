"""Tests for agent.engine.backends.pricing: exact dollar costs from token usage."""

from decimal import Decimal

import pytest

from agent.engine.backends.base import Usage
from agent.engine.backends.pricing import cost_from_settings, cost_usd

MILLION = 1_000_000
HAIKU = {
    "input_per_mtok": 1.0,
    "output_per_mtok": 5.0,
    "cache_read_factor": 0.1,
    "cache_write_factor": 1.25,
}


def test_a_million_input_and_output_tokens_cost_the_list_prices():
    usage = Usage(input_tokens=MILLION, output_tokens=MILLION)

    assert cost_usd(usage, **HAIKU) == Decimal(6)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (Usage(cache_read_tokens=MILLION), Decimal("0.1")),
        (Usage(cache_write_tokens=MILLION), Decimal("1.25")),
        (
            Usage(
                input_tokens=2_000,
                output_tokens=300,
                cache_read_tokens=10_000,
                cache_write_tokens=4_000,
            ),
            # 2000 x 1 + 300 x 5 + 10000 x 0.1 + 4000 x 1.25 = 9500 micro-dollars
            Decimal("0.0095"),
        ),
        (Usage(), Decimal(0)),
    ],
)
def test_cache_reads_and_writes_are_priced_from_the_input_price(usage, expected):
    assert cost_usd(usage, **HAIKU) == expected


def test_cost_is_an_exact_decimal_even_from_float_prices():
    # 0.1 as a binary float is 0.1000000000000000055511151231257827...; the cost must not be.
    one_read = cost_usd(Usage(cache_read_tokens=1), **HAIKU)

    assert isinstance(one_read, Decimal)
    assert one_read == Decimal("0.0000001")
    assert cost_usd(
        Usage(input_tokens=1, output_tokens=1),
        **{**HAIKU, "input_per_mtok": 0.3, "output_per_mtok": 0.7},
    ) == Decimal("0.000001")


def test_costs_add_up_exactly_across_turns():
    turns = [
        Usage(input_tokens=1_234 + n, output_tokens=77, cache_read_tokens=3_001 * n)
        for n in range(50)
    ]
    total = sum(turns, Usage())

    assert sum(cost_usd(turn, **HAIKU) for turn in turns) == cost_usd(total, **HAIKU)


def test_prices_may_be_decimals_or_strings():
    usage = Usage(input_tokens=MILLION, output_tokens=MILLION)

    cost = cost_usd(
        usage,
        input_per_mtok=Decimal("3"),
        output_per_mtok="15",
        cache_read_factor="0.1",
        cache_write_factor=Decimal("1.25"),
    )

    assert cost == Decimal(18)


def test_cost_from_settings_uses_the_default_haiku_prices():
    usage = Usage(
        input_tokens=MILLION,
        output_tokens=MILLION,
        cache_read_tokens=MILLION,
        cache_write_tokens=MILLION,
    )

    assert cost_from_settings(usage) == Decimal("7.35")


def test_cost_from_settings_reads_the_settings_at_call_time(settings):
    settings.TRIAGE_PRICE_INPUT_PER_MTOK = 3.0
    settings.TRIAGE_PRICE_OUTPUT_PER_MTOK = 15.0
    settings.TRIAGE_PRICE_CACHE_READ_FACTOR = 0.2
    settings.TRIAGE_PRICE_CACHE_WRITE_FACTOR = 2
    usage = Usage(
        input_tokens=MILLION,
        output_tokens=MILLION,
        cache_read_tokens=MILLION,
        cache_write_tokens=MILLION,
    )

    # 3 + 15 + 3 x 0.2 + 3 x 2
    assert cost_from_settings(usage) == Decimal("24.6")
