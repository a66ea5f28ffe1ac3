"""Reading a whole table, a page at a time."""

#: Rows a scan asks for at once: few enough for the store to hold an
#: answer (CrateDB's circuit breaker refused one scan of 1.5 million ledger
#: rows on a 512 MB heap), many enough that a table of millions takes tens
#: of scans, each of which filters the whole table again.
PAGE = 50_000


def every(store, table_name, order_by, page=None):
    """Yield every row of ``table_name`` in ``order_by``, which must be
    total (end on the key), in scans of ``page`` (PAGE) rows from where the
    last one ended (keyset paging)."""
    page, after = page or PAGE, None
    while True:
        rows = store.scan(table_name, order_by=order_by, limit=page, after=after)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1]
