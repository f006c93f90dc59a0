# make bench: issue 7 performance targets (bench/bench.py). Data is generated once into bench-data/.
.PHONY: bench bench-passes bench-package

bench: $(STAMP) ## Time naive vs decompression floor vs pipeline; peak memory; import time (QUICK=1: small files)
	$(PY) bench/bench.py $(if $(QUICK),--quick,)

bench-passes: $(STAMP) ## Split the skip path's gap to the isal floor pass by pass (needs the files of a full `make bench`)
	$(PY) bench/passes.py --sizes

bench-package: $(STAMP) ## Only the cold-import ratio of the built Lambda package (part of `make bench`)
	$(PY) bench/package_imports.py
