"""citebot benchmarks: ``make bench`` (``python -m bench.run_all``); see bench/README.md."""
