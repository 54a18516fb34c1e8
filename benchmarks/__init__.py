"""Benchmark harnesses above the engine: the shortcut suite's efficacy runs, their reports and
the speed/memory benchmarks (``bench_*``). Nothing below this package imports it.
"""
