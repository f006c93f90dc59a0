"""The read path: the audit questions a person asks of the table, and what the digests prove.

    queries   who did what to which stack or server, when, failed or mutating: Query only, never Scan
    actors    a caller as a person would name them, keyed by account and principal
    verify    the digest files of a bucket joined with the ledger: every log file read, none altered

May import ingest/ (the table's item shapes, the digest parser) and the base; never cli/ or handlers/.
"""
