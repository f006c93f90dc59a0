# make bench: the per-file performance targets (bench/bench.py; data generated once into bench-data/).
# make bench-backfill: the backfill at an organization's scale (bench/backfill_*.py), figures in bench/results-backfill-*.json.
.PHONY: bench bench-passes bench-package bench-backfill

bench: $(STAMP) ## Time naive vs decompression floor vs pipeline; peak memory; import time (QUICK=1: small files)
	$(PY) bench/bench.py $(if $(QUICK),--quick,)

bench-passes: $(STAMP) ## Split the skip path's gap to the isal floor pass by pass (needs the files of a full `make bench`)
	$(PY) bench/passes.py --sizes

bench-package: $(STAMP) ## Only the cold-import ratio of the built Lambda package (part of `make bench`)
	$(PY) bench/package_imports.py

bench-backfill: $(STAMP) ## Issue 21 at scale: (a) Batch Operations planning and (c) the estimate, (b) the queue path's listing over 1,000,000 keys, (d) writes per partition key in a digest backfill (QUICK=1: smaller)
	PYTHONPATH=src:. $(PY) bench/backfill_plan.py
	PYTHONPATH=src:. $(PY) bench/backfill_listing.py $(if $(QUICK),--quick,)
	PYTHONPATH=src:. $(PY) bench/backfill_digests.py $(if $(QUICK),--accounts 4 --hours 12,)
