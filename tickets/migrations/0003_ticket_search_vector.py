"""Full-text search over the labelled ticket history, on PostgreSQL only.

Adds, outside Django's model state (so that models stay portable and SQLite needs nothing):

- ``tickets_ticket.search_vector``: a stored generated ``tsvector`` (subject weight A, body
  weight B), always in step with the row because PostgreSQL computes it;
- ``ticket_search_labelled``: a GIN index on it, partial to the labelled history (triaged or
  resolved, with a category), the only rows similar-ticket retrieval ever searches;
- ``ticket_search_stats``: document frequency per lexeme over that same history (the row with
  the empty lexeme counts the documents), which retrieval uses to find a query's rare words.
  Statement-level triggers keep it current in the writing transaction: one aggregate per
  statement, so a bulk import pays once, and lexeme rows are upserted in sorted order, so two
  concurrent approvals queue on a shared lexeme instead of deadlocking.

On a large existing table this rewrites the table (the generated column) and builds the index
under an exclusive lock: plan a maintenance window. Every operation is a no-op on other vendors.
"""

from django.db import migrations

LABELLED = "{row}status IN ('triaged', 'resolved') AND {row}category_id IS NOT NULL"

# Adds a signed count per lexeme of the (search_vector, delta) rows of ``source``.
UPSERT = """
            INSERT INTO ticket_search_stats AS s (lexeme, ndoc)
            SELECT l.lexeme, sum(d.delta)
            FROM ({source}) AS d (search_vector, delta)
            CROSS JOIN LATERAL unnest(ARRAY['']::text[] || tsvector_to_array(d.search_vector))
                AS l (lexeme)
            GROUP BY l.lexeme
            HAVING sum(d.delta) <> 0
            ORDER BY l.lexeme
            ON CONFLICT (lexeme) DO UPDATE SET ndoc = s.ndoc + EXCLUDED.ndoc;"""

INSERTED = f"SELECT n.search_vector, 1 FROM new_rows n WHERE {LABELLED.format(row='n.')}"
DELETED = f"SELECT o.search_vector, -1 FROM old_rows o WHERE {LABELLED.format(row='o.')}"
# Only rows whose membership or text changed count: most updates (status moves before approval,
# timestamps) leave the statistics alone.
UPDATED = f"""
                SELECT v.search_vector, v.delta
                FROM old_rows o JOIN new_rows n ON n.id = o.id
                CROSS JOIN LATERAL (
                    SELECT o.search_vector, -1 WHERE {LABELLED.format(row="o.")}
                    UNION ALL
                    SELECT n.search_vector, 1 WHERE {LABELLED.format(row="n.")}
                ) AS v (search_vector, delta)
                WHERE ({LABELLED.format(row="o.")}) IS DISTINCT FROM ({LABELLED.format(row="n.")})
                   OR o.search_vector IS DISTINCT FROM n.search_vector"""

FORWARD = [
    """
    ALTER TABLE tickets_ticket ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, coalesce(subject, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(body, '')), 'B')
    ) STORED
    """,
    # fastupdate off: approvals are rare, searches are not; without a pending list every search
    # reads only the index proper.
    f"""
    CREATE INDEX ticket_search_labelled ON tickets_ticket USING gin (search_vector)
    WITH (fastupdate = off) WHERE {LABELLED.format(row="")}
    """,
    """
    CREATE TABLE ticket_search_stats (
        lexeme text PRIMARY KEY,
        ndoc bigint NOT NULL
    )
    """,
    f"""
    INSERT INTO ticket_search_stats (lexeme, ndoc)
    SELECT word, ndoc FROM ts_stat(
        'SELECT search_vector FROM tickets_ticket WHERE {LABELLED.format(row="").replace("'", "''")}'
    )
    UNION ALL
    SELECT '', count(*) FROM tickets_ticket WHERE {LABELLED.format(row="")}
    """,
    # Each labelled document adds +1 to each of its distinct lexemes and to the '' row; a row
    # that leaves the history (undo, deletion, edit) takes its +1s back.
    f"""
    CREATE FUNCTION ticket_search_stats_sync() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            DELETE FROM ticket_search_stats;
        ELSIF TG_OP = 'INSERT' THEN
            {UPSERT.format(source=INSERTED)}
        ELSIF TG_OP = 'DELETE' THEN
            {UPSERT.format(source=DELETED)}
        ELSE
            {UPSERT.format(source=UPDATED)}
        END IF;
        RETURN NULL;
    END
    $fn$
    """,
    """
    CREATE TRIGGER ticket_search_stats_insert AFTER INSERT ON tickets_ticket
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_stats_sync()
    """,
    """
    CREATE TRIGGER ticket_search_stats_update AFTER UPDATE ON tickets_ticket
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_stats_sync()
    """,
    """
    CREATE TRIGGER ticket_search_stats_delete AFTER DELETE ON tickets_ticket
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_stats_sync()
    """,
    """
    CREATE TRIGGER ticket_search_stats_truncate AFTER TRUNCATE ON tickets_ticket
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_stats_sync()
    """,
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS ticket_search_stats_truncate ON tickets_ticket",
    "DROP TRIGGER IF EXISTS ticket_search_stats_delete ON tickets_ticket",
    "DROP TRIGGER IF EXISTS ticket_search_stats_update ON tickets_ticket",
    "DROP TRIGGER IF EXISTS ticket_search_stats_insert ON tickets_ticket",
    "DROP FUNCTION IF EXISTS ticket_search_stats_sync()",
    "DROP TABLE IF EXISTS ticket_search_stats",
    "DROP INDEX IF EXISTS ticket_search_labelled",
    "ALTER TABLE tickets_ticket DROP COLUMN IF EXISTS search_vector",
]


def _execute_on_postgresql(schema_editor, statements):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in statements:
        schema_editor.execute(statement)


def forward(apps, schema_editor):
    _execute_on_postgresql(schema_editor, FORWARD)


def backward(apps, schema_editor):
    _execute_on_postgresql(schema_editor, BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0002_roles"),
    ]

    operations = [
        migrations.RunPython(forward, backward, elidable=False),
    ]
