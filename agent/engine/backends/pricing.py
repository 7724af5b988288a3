"""What a model's usage costs, in US dollars, as an exact ``Decimal``.

Prices are per million tokens; cache reads and writes are priced as a factor of the input
price (0.1x and 1.25x for Claude today). Prices and factors are settings because they change.
"""

from decimal import Decimal

from django.conf import settings

from agent.engine.backends.base import Usage

Price = Decimal | int | float | str

MILLION = Decimal(1_000_000)


def cost_usd(
    usage: Usage,
    *,
    input_per_mtok: Price,
    output_per_mtok: Price,
    cache_read_factor: Price,
    cache_write_factor: Price,
) -> Decimal:
    """The exact cost of ``usage``. Floats are read by their shortest decimal form (``0.1`` is
    one tenth, not the binary float nearest to it), so settings read from the environment
    price exactly. Not rounded: the caller rounds once, where the amount is stored."""
    input_price = _decimal(input_per_mtok)
    total = (
        usage.input_tokens * input_price
        + usage.output_tokens * _decimal(output_per_mtok)
        + usage.cache_read_tokens * input_price * _decimal(cache_read_factor)
        + usage.cache_write_tokens * input_price * _decimal(cache_write_factor)
    )
    return total / MILLION


def cost_from_settings(usage: Usage) -> Decimal:
    """``cost_usd`` at the ``TRIAGE_PRICE_*`` settings, read now (tests and deploys change them)."""
    return cost_usd(
        usage,
        input_per_mtok=settings.TRIAGE_PRICE_INPUT_PER_MTOK,
        output_per_mtok=settings.TRIAGE_PRICE_OUTPUT_PER_MTOK,
        cache_read_factor=settings.TRIAGE_PRICE_CACHE_READ_FACTOR,
        cache_write_factor=settings.TRIAGE_PRICE_CACHE_WRITE_FACTOR,
    )


def _decimal(value: Price) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
