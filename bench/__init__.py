"""Benchmarks at S&P 500 scale: `make bench` (= `python -m bench.run`) writes bench/results.json.

Speed and memory are measured here, never asserted in the tests.
"""
