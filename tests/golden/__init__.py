"""Golden tests: every (inbound dialect, upstream dialect) pair, request, answer and stream (README.md)."""
