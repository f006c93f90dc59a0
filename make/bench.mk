# make bench: issue 7 performance targets (bench/bench.py). Data is generated once into bench-data/.
.PHONY: bench

bench: $(STAMP) ## Time naive vs decompression floor vs pipeline; peak memory; import time (QUICK=1: small files)
	$(PY) bench/bench.py $(if $(QUICK),--quick,)
