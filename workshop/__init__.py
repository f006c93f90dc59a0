"""The workshop: what serves development, never installed (pyproject installs src/opsworks_trail only).

The demo (`make demo`: demo.py), the sample trail generator (synthetic.py, signed digests: sample_digests.py),
the in-process invoker (`make invoke`: invoke.py) and template.yaml read as data (template.py). The tests,
`bench/` and the Makefile may import it; the package may not (an import contract checks it).
"""
