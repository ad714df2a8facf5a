"""Reading and checking tables before any model is involved: files of every supported
format read into rows (`tables`), seeded stratified or grouped splits, duplicate and leakage
counts, token-length statistics and the data report's records (`splits`).

May import: `finetuner.errors` only (and pandas). Imported by the task modules and above.
"""
