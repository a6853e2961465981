"""Protocol runs and their results: run-folder layouts, per-run result records, log parsing, the leaderboard.

Nothing here imports torch, so the parser and the leaderboard start in a fraction of a second.
"""
