"""Presentation: what people read. Terminal tables and the HTML retirement report (report).

May import read/, ingest/ and the base; never cli/. Renders; asks nothing of AWS itself.
"""
