"""Similar-ticket retrieval: the labelled past tickets most like the one under triage.

They are the agent's evidence, so the right neighbours matter as much as speed (README,
"Similar-ticket retrieval"). A search takes three queries whatever the history's size: the
query's term statistics, the ranked candidates with their details, and their notes.

PostgreSQL (migration ``tickets.0003``): a stored ``search_vector`` with a GIN index partial to
the history, and ``ticket_search_stats``, document frequencies kept exact by triggers. Ranking
every ticket that shares a word with the query is ~100x too slow at a million tickets, because
common words match most of them. Instead the query's most telling lexemes (highest IDF, the
query's own repetitions counting) propose candidates, strictest first: tickets holding all of
them, then any two, then any one (so no single misleading word decides), then any word of the
query, until enough are found. The bounded pool is ranked with BM25 over the query's lexemes.

Other databases: the same plan, portably. Terms are stopword-free truncation stems matched with
``icontains``; one scan tells which ticket holds which term, from which document frequencies and
an IDF-weighted coverage pick the pool, which is ranked with BM25 in Python.
"""

import heapq
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

from django.db import connection
from django.db.models import Case, IntegerField, Q, Value, When
from django.db.models.functions import Substr

from tickets.models import Ticket, TicketNote
from tickets.selectors import ticket_history

MAX_LIMIT = 20
BODY_CHARS = 1_000

# The SQL form of ``tickets.selectors.ticket_history`` (the human-approved history).
# Must imply the predicate of the partial GIN index (migration 0003) for the index to be used.
HISTORY_SQL = "t.status IN ('triaged', 'resolved') AND t.category_id IS NOT NULL"

# Chosen by measurement (benchmarks/retrieval.py; README): 4 lexemes, or a larger pool, cost
# latency without finding better neighbours; 2 lexemes found worse ones.
CANDIDATE_LEXEMES = 3
ENOUGH = 50  # relaxing stops at the first level that finds this many
POOL = 200  # at most this many candidates per level are ranked
MAX_QUERY_LEXEMES = 64  # bounds the ranking work for very long tickets
PORTABLE_TERMS = 12
PORTABLE_POOL = 50
BM25_K1 = 1.2
BM25_B = 0.75

# PostgreSQL's English stopwords, so both backends ignore the same words.
STOPWORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom this
    that these those am is are was were be been being have has had having do does did doing a an
    the and but if or because as until while of at by for with about against between into through
    during before after above below to from up down in out on off over under again further then
    once here there when where why how all any both each few more most other some such no nor not
    only own same so than too very s t can will just don should now""".split()
)
WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class SimilarTicket:
    """A labelled past ticket shown to the agent as evidence."""

    ticket_id: int
    subject: str
    body: str  # at most BODY_CHARS characters
    category_slug: str
    category_name: str
    urgency: str
    note: str  # the latest non-retracted internal note, '' if none
    score: float  # higher is more similar; comparable only within one result list


def similar_tickets(*, ticket: Ticket, limit: int = 3) -> list[SimilarTicket]:
    """The ``limit`` (at most 20) resolved, human-approved tickets most similar to ``ticket``,
    most similar first; never ``ticket`` itself, fewer when fewer share a word with it.

    Only tickets that are triaged or resolved and carry a category count: labels reach a ticket
    only through staff approval or a labelled import, so these are the human-approved ones.
    """
    return similar_tickets_for_text(
        text=f"{ticket.subject}\n{ticket.body}", limit=limit, exclude_ticket_id=ticket.pk
    )


def similar_tickets_for_text(
    *, text: str, limit: int = 3, exclude_ticket_id: int | None = None
) -> list[SimilarTicket]:
    """As ``similar_tickets``, for a text that need not be stored (an evaluation's snapshot);
    ``exclude_ticket_id`` is never returned. A text without a searchable word returns []
    without a query."""
    limit = min(limit, MAX_LIMIT)
    if limit < 1 or not _words(text):
        return []
    if connection.vendor == "postgresql":
        found = _search_postgresql(text, limit, exclude_ticket_id)
    else:
        found = _search_portable(text, limit, exclude_ticket_id)
    return _with_notes(found)


def _words(text: str) -> list[str]:
    return [word for word in WORD.findall(text.lower()) if word not in STOPWORDS]


def _with_notes(found: list[SimilarTicket]) -> list[SimilarTicket]:
    if not found:
        return []
    rows = (
        TicketNote.objects.filter(ticket_id__in=[item.ticket_id for item in found])
        .filter(retracted_at__isnull=True)
        .order_by("ticket_id", "created_at", "id")
        .values_list("ticket_id", "body")
    )
    notes = dict(rows)  # in ascending order, so each ticket's latest note wins
    return [replace(item, note=notes.get(item.ticket_id, "")) for item in found]


def _similar(row: tuple[Any, ...], score: float) -> SimilarTicket:
    ticket_id, subject, body, slug, name, urgency = row
    return SimilarTicket(ticket_id, subject, body[:BODY_CHARS], slug, name, urgency, "", score)


# --- PostgreSQL -------------------------------------------------------------------------------

LEXEMES_SQL = """
    SELECT l.lexeme, cardinality(l.positions), s.ndoc,
           (SELECT ndoc FROM ticket_search_stats WHERE lexeme = '')
    FROM unnest(to_tsvector('english', %s)) AS l
    JOIN ticket_search_stats AS s ON s.lexeme = l.lexeme AND s.ndoc > 0
"""

# {levels}: MATERIALIZED CTEs level_<m>, up to POOL tickets holding at least m of the telling
# lexemes. A level's gate, a one-time filter, skips its index scan once stricter levels found
# ENOUGH; a bitmap index scan costs with the matches of its words, however small the LIMIT.
LEVEL_SQL = """
    level_{m} AS MATERIALIZED (
        SELECT t.id, t.search_vector FROM tickets_ticket AS t
        WHERE {history} AND t.id IS DISTINCT FROM %(exclude)s::bigint
          AND t.search_vector @@ %(level_{m})s::tsquery{gate}
        LIMIT %(pool)s
    )"""
# BM25 over the pool: IDF-weighted, length relative to the pool's mean, subject (weight A)
# occurrences counting double.
SEARCH_SQL = """
    WITH query (lexeme, weight) AS (
        SELECT * FROM unnest(%(lexemes)s::text[], %(weights)s::float8[])
    ),
    {levels},
    pool AS (SELECT DISTINCT ON (id) id, search_vector FROM ({union}) AS found),
    sized AS (
        SELECT id, search_vector,
               length(search_vector)::float8 / avg(length(search_vector)) OVER () AS size
        FROM pool
    ),
    scored AS (
        SELECT sized.id, (
            SELECT sum(q.weight * f.tf * (%(k1)s + 1)
                       / (f.tf + %(k1)s * (1 - %(b)s + %(b)s * sized.size)))
            FROM unnest(sized.search_vector) AS u
            JOIN query AS q ON q.lexeme = u.lexeme
            CROSS JOIN LATERAL (SELECT (cardinality(u.positions)
                + cardinality(array_positions(u.weights, 'A')))::float8 AS tf) AS f
        ) AS score
        FROM sized
        ORDER BY score DESC, id DESC
        LIMIT %(limit)s
    )
    SELECT t.id, t.subject, left(t.body, {body_chars}), c.slug, c.name, t.urgency, s.score
    FROM scored AS s
    JOIN tickets_ticket AS t ON t.id = s.id
    JOIN tickets_category AS c ON c.id = t.category_id
    ORDER BY s.score DESC, s.id DESC
"""


def _search_postgresql(text: str, limit: int, exclude: int | None) -> list[SimilarTicket]:
    with connection.cursor() as cursor:
        cursor.execute(LEXEMES_SQL, [text])
        rows: list[tuple[str, int, int, int | None]] = cursor.fetchall()
        if not rows:
            return []  # no word of the query occurs in the history
        documents = max(rows[0][3] or 0, *(ndoc for _, _, ndoc, _ in rows))
        # BM25's IDF, the query's own repetitions counting (dampened).
        weights = {
            lexeme: math.log(1 + (documents - ndoc + 0.5) / (ndoc + 0.5)) * (1 + math.log(qtf))
            for lexeme, qtf, ndoc, _ in rows
        }
        ranked = sorted(weights, key=lambda lexeme: (-weights[lexeme], lexeme))
        telling, query = ranked[:CANDIDATE_LEXEMES], ranked[:MAX_QUERY_LEXEMES]
        levels = {m: _at_least(m, telling) for m in range(len(telling), 0, -1)}
        if len(query) > len(telling):
            # Any word of the query: a small history often needs it, a large one rarely.
            levels[0] = _at_least(1, query)
        params = {
            **{f"level_{m}": tsquery for m, tsquery in levels.items()},
            "lexemes": query,
            "weights": [weights[lexeme] for lexeme in query],
            "exclude": exclude,
            "pool": POOL,
            "limit": limit,
            "k1": BM25_K1,
            "b": BM25_B,
        }
        cursor.execute(_search_sql(list(levels)), params)
        return [_similar(row[:6], float(row[6] or 0.0)) for row in cursor.fetchall()]


def _search_sql(levels: list[int]) -> str:
    """SEARCH_SQL for ``levels``, strictest first, each gated on the stricter ones."""
    # S608: only constants and integers are interpolated; the input travels as parameters.
    ctes = []
    for position, m in enumerate(levels):
        stricter = levels[:position]
        gate = "".join(f" AND (SELECT count(*) FROM level_{s}) < {ENOUGH}" for s in stricter)  # noqa: S608
        ctes.append(LEVEL_SQL.format(m=m, history=HISTORY_SQL, gate=gate))
    union = " UNION ALL ".join(f"SELECT * FROM level_{m}" for m in levels)  # noqa: S608
    return SEARCH_SQL.format(levels=",".join(ctes), union=union, body_chars=BODY_CHARS)


def _at_least(m: int, lexemes: list[str]) -> str:
    """A tsquery matching documents that contain at least ``m`` of ``lexemes``."""
    quoted = ["'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" for lexeme in lexemes]
    if m == 1:
        return " | ".join(quoted)
    return " | ".join("(" + " & ".join(group) + ")" for group in combinations(quoted, m))


# --- Any other database -----------------------------------------------------------------------


def _search_portable(text: str, limit: int, exclude: int | None) -> list[SimilarTicket]:
    counts = _portable_terms(text)
    terms = list(counts)
    if not terms:
        return []
    history = ticket_history()
    if exclude is not None:
        history = history.exclude(pk=exclude)
    # One scan of the history: bit i of a ticket's mask says whether it contains term i.
    contains = [Q(subject__icontains=term) | Q(body__icontains=term) for term in terms]
    mask = sum((_when(condition, 1 << bit) for bit, condition in enumerate(contains)), Value(0))
    # Raw rows: Django's per-value converters would cost more than the scan itself.
    sql, params = history.annotate(mask=mask).values_list("pk", "mask").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        masks: list[tuple[int, int]] = cursor.fetchall()
    tickets_per_mask = Counter(mask for _, mask in masks)
    idf = {}
    for bit, term in enumerate(terms):
        ndoc = sum(n for mask, n in tickets_per_mask.items() if mask >> bit & 1)
        if ndoc:
            idf[term] = (bit, math.log(1 + (len(masks) - ndoc + 0.5) / (ndoc + 0.5)))
    coverage = {
        mask: sum(weight for bit, weight in idf.values() if mask >> bit & 1)
        for mask in tickets_per_mask
    }
    best = heapq.nlargest(PORTABLE_POOL, ((coverage[mask], pk) for pk, mask in masks if mask))
    if not best:
        return []
    pool = (
        Ticket.objects.filter(pk__in=[pk for _, pk in best])
        .annotate(start=Substr("body", 1, 4 * BODY_CHARS))
        .values_list("pk", "subject", "start", "category__slug", "category__name", "urgency")
    )
    weights = {term: weight * (1 + math.log(counts[term])) for term, (_, weight) in idf.items()}
    return _bm25(list(pool), weights)[:limit]


def _portable_terms(text: str) -> dict[str, int]:
    """At most PORTABLE_TERMS query terms with their counts: truncation stems ("cancelled",
    "cancellation": "cancel"), numbers whole (an order number's prefix means nothing), none
    shorter than 3 characters."""
    counts: Counter[str] = Counter()
    for word in _words(text):
        term = word if word.isdigit() else word[:6]
        if len(term) >= 3:
            counts[term] += 1
    # Before any statistics, repeated and then longer words are the likelier telling ones.
    ranked = sorted(counts, key=lambda term: (-counts[term], -len(term), term))
    return {term: counts[term] for term in ranked[:PORTABLE_TERMS]}


def _when(condition: Q, value: int) -> Case:
    return Case(When(condition, then=Value(value)), default=Value(0), output_field=IntegerField())


def _bm25(pool: list[tuple[Any, ...]], weights: dict[str, float]) -> list[SimilarTicket]:
    """``pool`` ranked by BM25, a term's frequency being its count as a substring (subject
    occurrences counting double) and lengths counted in words."""
    lengths = [len(row[1].split()) + len(row[2].split()) for row in pool]
    average = sum(lengths) / len(lengths) if lengths else 1.0
    found = []
    for row, length in zip(pool, lengths, strict=True):
        subject, body = row[1].lower(), row[2].lower()
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / average)
        score = 0.0
        for term, weight in weights.items():
            tf = 2 * subject.count(term) + body.count(term)
            score += weight * tf * (BM25_K1 + 1) / (tf + norm)
        found.append(_similar(row, score))
    found.sort(key=lambda item: (-item.score, -item.ticket_id))
    return found
