"""Presentation: what people read. The retirement report, as HTML and text (report), and the aligned
columns every command prints (tables).

May import read/, ingest/ and the base; never cli/. Renders; asks nothing of AWS itself.
"""
