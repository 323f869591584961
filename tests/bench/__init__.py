"""Tests of the benchmark package (bench/)."""
