"""Small-scale experiments (reproductions) built on the training package."""
