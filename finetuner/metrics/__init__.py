"""Metrics computed offline by the project (scikit-learn and our own code, no hub scripts).

May import: the root modules and `finetuner.data`.
"""
