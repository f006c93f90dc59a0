"""Presentation: what people read. The retirement report, as HTML and text (report), and the aligned
columns every command prints (tables).

May import core/; never the command modules of cli/. Renders; asks nothing of AWS itself.
"""
