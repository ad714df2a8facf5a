"""The command line's parts: the flag table the page may read too (`flags`), the commands for
comparisons, searches and learning curves (`groups`), and `doctor` (what this machine can
do). The entry module is `finetuner/__main__.py` (`python -m finetuner`).

May import: everything but the page.
"""
