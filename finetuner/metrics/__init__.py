"""Metrics computed offline by the project (scikit-learn and our own code, no hub scripts)."""
