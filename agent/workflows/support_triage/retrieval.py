"""Similar-ticket retrieval: the labelled past tickets most like the one under triage.

The agent's evidence, so both speed and the right neighbours matter (docs/notes/retrieval.md).
Every search takes three queries whatever the history size: the query's term statistics, the
ranked candidates with their details, and their notes.

PostgreSQL (migration ``tickets.0003``): a stored ``search_vector`` with a GIN index partial to
the history, and ``ticket_search_stats`` (document frequency per lexeme, kept by triggers).
Ranking every ticket that shares a word with the query is ~100x too slow at a million tickets,
because common words match most of them. Instead the query's rarest lexemes propose candidates,
strictest first: tickets holding all of them, then all but one, and so on (``m`` of ``n``, which a
single misleading rare word cannot derail), until enough are found; the bounded pool is then
ranked with BM25 over every query lexeme, subject words counting double.

Other databases: the same plan, portable. Query terms are lower-cased, stopword-free word stems
(truncated to 6 letters) matched as substrings with ``icontains``; one aggregate counts their
document frequencies, one query orders the history by IDF-weighted term coverage and returns the
best few dozen, which are ranked with BM25 in Python.
"""

import math
import re
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

from django.db import connection
from django.db.models import Case, Count, F, FloatField, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Substr

from tickets.models import Ticket, TicketNote

MAX_LIMIT = 20
BODY_CHARS = 1_000

# "Human-approved": on this system labels reach a ticket only through staff approval or a
# labelled import, so a triaged or resolved ticket with a category is a human-approved one.
HISTORY_STATUSES = (Ticket.Status.TRIAGED, Ticket.Status.RESOLVED)
HISTORY_SQL = "t.status IN ('triaged', 'resolved') AND t.category_id IS NOT NULL"

# Candidate generation, chosen by measurement (benchmarks/retrieval.py, README): the 4 rarest
# lexemes propose candidates; relaxing stops once ENOUGH are found, and a pool holds at most
# POOL. More lexemes or a larger pool cost latency without better neighbours.
RARE_LEXEMES = 3
ENOUGH = 50
POOL = 200
MAX_QUERY_LEXEMES = 64  # a long ticket's 64 most telling lexemes rank as well as all of them
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
    """The at most ``limit`` (capped at 20) resolved, human-approved tickets most similar to
    ``ticket``, most similar first, never ``ticket`` itself.

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
    ``exclude_ticket_id`` is never returned. Text with no searchable word returns [] without
    touching the database."""
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
    notes: dict[int, str] = {}
    rows = (
        TicketNote.objects.filter(ticket_id__in=[item.ticket_id for item in found])
        .filter(retracted_at__isnull=True)
        .order_by("ticket_id", "created_at", "id")
        .values_list("ticket_id", "body")
    )
    for ticket_id, body in rows:
        notes[ticket_id] = body  # ascending order: the latest note wins
    return [replace(item, note=notes.get(item.ticket_id, "")) for item in found]


# --- PostgreSQL -------------------------------------------------------------------------------

LEXEMES_SQL = """
    SELECT l.lexeme, cardinality(l.positions), s.ndoc,
           (SELECT ndoc FROM ticket_search_stats WHERE lexeme = '')
    FROM unnest(to_tsvector('english', %s)) AS l
    JOIN ticket_search_stats AS s ON s.lexeme = l.lexeme AND s.ndoc > 0
"""

# {levels}: one MATERIALIZED CTE per relaxation level, "level_<m>" holding up to POOL tickets
# with at least m of the rare lexemes; a level runs only while the stricter ones found fewer
# than ENOUGH (a one-time filter, so its index scan is skipped, not just emptied).
SEARCH_SQL = """
    WITH query (lexeme, weight) AS (
        SELECT * FROM unnest(%(lexemes)s::text[], %(weights)s::float8[])
    ),
    {levels},
    pool AS (
        SELECT DISTINCT ON (id) id, search_vector FROM ({union}) AS found
    ),
    scored AS (
        SELECT sized.id, (
            SELECT sum(q.weight * tf * (%(k1)s + 1) / (tf + %(k1)s * (1 - %(b)s + %(b)s * sized.dl)))
            FROM unnest(sized.search_vector) AS u
            JOIN query AS q ON q.lexeme = u.lexeme
            -- subject (weight A) occurrences count double
            CROSS JOIN LATERAL (SELECT (cardinality(u.positions)
                + cardinality(array_positions(u.weights, 'A')))::float8 AS tf) AS f
        ) AS score
        FROM (
            SELECT id, search_vector,
                   length(search_vector)::float8 / avg(length(search_vector)) OVER () AS dl
            FROM pool
        ) AS sized
        ORDER BY score DESC, id DESC
        LIMIT %(limit)s
    )
    SELECT t.id, t.subject, left(t.body, {body_chars}), c.slug, c.name, t.urgency, s.score
    FROM scored AS s
    JOIN tickets_ticket AS t ON t.id = s.id
    JOIN tickets_category AS c ON c.id = t.category_id
    ORDER BY s.score DESC, s.id DESC
"""

LEVEL_SQL = """
    level_{m} AS MATERIALIZED (
        SELECT t.id, t.search_vector FROM tickets_ticket AS t
        WHERE {history} AND t.id IS DISTINCT FROM %(exclude)s::bigint
          AND t.search_vector @@ %(level_{m})s::tsquery {gate}
        LIMIT %(pool)s
    )"""


def _search_postgresql(text: str, limit: int, exclude: int | None) -> list[SimilarTicket]:
    with connection.cursor() as cursor:
        cursor.execute(LEXEMES_SQL, [text])
        rows: list[tuple[str, int, int, int]] = cursor.fetchall()
        if not rows:
            return []  # no word of the query occurs in the history
        documents = rows[0][3]
        # BM25's IDF; the query's own repetitions count, dampened.
        weights = {
            lexeme: math.log(1 + (documents - ndoc + 0.5) / (ndoc + 0.5)) * (1 + math.log(qtf))
            for lexeme, qtf, ndoc, _ in rows
        }
        ranked = sorted(weights, key=weights.__getitem__, reverse=True)[:MAX_QUERY_LEXEMES]
        by_rarity = sorted(weights, key=lambda l: (-weights[l], l))
        rare = by_rarity[:RARE_LEXEMES]
        levels = range(len(rare), 0, -1)
        params: dict[str, Any] = {
            "lexemes": ranked,
            "weights": [weights[lexeme] for lexeme in ranked],
            "exclude": exclude,
            "pool": POOL,
            "limit": limit,
            "k1": BM25_K1,
            "b": BM25_B,
        }
        params.update({f"level_{m}": _at_least(m, rare) for m in levels})
        if len(ranked) > len(rare):
            # Last resort, cheap because it runs only when even the rare lexemes are scarce:
            # tickets sharing any telling word (what a small history often needs).
            levels = range(len(rare), -1, -1)
            params["level_0"] = _at_least(1, ranked)
        sql = SEARCH_SQL.format(
            levels=",".join(_level_sql(m, len(rare)) for m in levels),
            union=" UNION ALL ".join(f"SELECT * FROM level_{m}" for m in levels),
            body_chars=BODY_CHARS,
        )
        cursor.execute(sql, params)
        return [
            SimilarTicket(
                ticket_id=ticket_id,
                subject=subject,
                body=body,
                category_slug=slug,
                category_name=name,
                urgency=urgency,
                note="",
                score=float(score or 0.0),
            )
            for ticket_id, subject, body, slug, name, urgency, score in cursor.fetchall()
        ]


def _level_sql(m: int, strictest: int) -> str:
    gate = "".join(
        f" AND (SELECT count(*) FROM level_{stricter}) < {ENOUGH}"
        for stricter in range(strictest, m, -1)
    )
    return LEVEL_SQL.format(m=m, history=HISTORY_SQL, gate=gate)


def _at_least(m: int, lexemes: list[str]) -> str:
    """A tsquery matching documents that contain at least ``m`` of ``lexemes``."""
    quoted = ["'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" for lexeme in lexemes]
    if m == 1:
        return " | ".join(quoted)
    return " | ".join("(" + " & ".join(group) + ")" for group in combinations(quoted, m))


# --- Any other database -----------------------------------------------------------------------


def _search_portable(text: str, limit: int, exclude: int | None) -> list[SimilarTicket]:
    counts: dict[str, int] = {}
    for word in _words(text):
        term = word[:6]  # truncation stems: "cancelled", "cancellation" -> "cancel"
        if len(term) >= 3:
            counts[term] = counts.get(term, 0) + 1
    terms = sorted(counts, key=lambda term: (-counts[term], term))[:PORTABLE_TERMS]
    if not terms:
        return []
    history = Ticket.objects.filter(status__in=HISTORY_STATUSES, category__isnull=False)
    if exclude is not None:
        history = history.exclude(pk=exclude)
    contains = {term: Q(subject__icontains=term) | Q(body__icontains=term) for term in terms}
    stats = history.aggregate(
        documents=Count("pk"),
        **{f"df_{i}": Sum(_when(contains[term], 1)) for i, term in enumerate(terms)},
    )
    documents = stats["documents"]
    idf = {
        term: math.log(1 + (documents - df + 0.5) / (df + 0.5))
        for term, df in ((term, stats[f"df_{i}"] or 0) for i, term in enumerate(terms))
        if df > 0
    }
    if not idf:
        return []
    coverage = sum((_when(contains[term], weight) for term, weight in idf.items()), Value(0.0))
    pool = list(_candidates(history, coverage))
    return _bm25(pool, {term: idf[term] * counts[term] for term in idf})[:limit]


def _when(condition: Q, value: float) -> Case:
    """``value`` where ``condition`` holds, else 0."""
    field = IntegerField() if isinstance(value, int) else FloatField()
    return Case(When(condition, then=Value(value)), default=Value(0), output_field=field)


def _candidates(history: QuerySet[Ticket], coverage: Any) -> QuerySet[Ticket, dict[str, Any]]:
    return (
        history.annotate(coverage=coverage)
        .filter(coverage__gt=0)
        .order_by("-coverage", "-pk")
        .values(
            "pk",
            "subject",
            "urgency",
            text=Substr("body", 1, 4 * BODY_CHARS),
            slug=F("category__slug"),
            name=F("category__name"),
        )[:PORTABLE_POOL]
    )


def _bm25(pool: list[dict[str, Any]], weights: dict[str, float]) -> list[SimilarTicket]:
    lengths = [len(row["subject"].split()) + len(row["text"].split()) for row in pool]
    average = sum(lengths) / len(lengths) if lengths else 1.0
    found = []
    for row, length in zip(pool, lengths, strict=True):
        subject, body = row["subject"].lower(), row["text"].lower()
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / average)
        score = 0.0
        for term, weight in weights.items():
            tf = 2 * subject.count(term) + body.count(term)  # subject words count double
            score += weight * tf * (BM25_K1 + 1) / (tf + norm)
        found.append(
            SimilarTicket(
                ticket_id=row["pk"],
                subject=row["subject"],
                body=row["text"][:BODY_CHARS],
                category_slug=row["slug"],
                category_name=row["name"],
                urgency=row["urgency"],
                note="",
                score=score,
            )
        )
    found.sort(key=lambda item: (-item.score, -item.ticket_id))
    return found
