"""ntrader's benchmarks (``python bench/run.py`` / ``make bench``): each area's benchmark side by
side with its reference path, the shared harness (``bench.harness``) and the input generators
(``bench.gen``).

A development tool, not part of the library: nothing in ``ntrader`` (nor ``scripts``) may import
``bench``. The bench imports the library, the scripts only as subprocesses, and
``tests.s3_fixtures`` (its S3 server).
"""
