"""Benchmark of the reconstruction engine against classical screened Poisson, on the bunny and more.

Run ``python -m bench --help``. Results go to ``bench/out/results.jsonl`` (one row per run, written
as soon as the run ends, so a long benchmark can be inspected or resumed); ``RESULTS.md`` and
``RESULTS_cd1_vs_time.png`` are rebuilt from it. See ``bench/README.md``.
"""
