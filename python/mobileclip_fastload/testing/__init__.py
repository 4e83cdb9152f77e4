"""Generators of small, realistic test data (real photographs from
scikit-image, DataCompDR-style parameters); used by tests, benches and the demo."""
