"""Protocol runs and their results: run-folder layouts, per-run result records, log parsing, the leaderboard."""
