"""Rewrite the golden files from the current dialect code (see README.md).

    .venv/bin/python -m tests.golden.regenerate

Writes every file under ``tests/golden/expected/`` and ``tests/golden/canonical/`` from the fixtures
(``requests/``, ``upstream/``) and removes golden files no case produces any more. Files listed in
``harness.CORRECTED`` (the right output, written while the code is still wrong) are left alone. Run it
when a mapping changes on purpose, then review ``git diff tests/golden`` line by line: every changed
byte is a change a client will see.
"""

from __future__ import annotations

import sys

from tests.golden.harness import CANONICAL_DIR, CORRECTED, EXPECTED_DIR, HERE, goldens


def regenerate() -> int:
    wanted = {g.file: g for g in goldens()}
    changed = 0
    for path, golden in wanted.items():
        content = golden.compute()
        if golden.path in CORRECTED:  # written by hand as the right output: never overwritten
            agrees = path.exists() and path.read_bytes() == content
            state = "the code now agrees: remove it from CORRECTED" if agrees else "the code still differs"
            print(f"kept {golden.path} (hand-corrected; {state})")
            continue
        if path.exists() and path.read_bytes() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        changed += 1
        print(f"wrote {path.relative_to(HERE)}")
    for root in (EXPECTED_DIR, CANONICAL_DIR):
        for path in sorted(root.rglob("*")):
            if path.is_file() and path not in wanted:
                path.unlink()
                changed += 1
                print(f"removed {path.relative_to(HERE)}")
    print(f"{len(wanted)} golden files, {changed} changed")
    return 0


if __name__ == "__main__":
    sys.exit(regenerate())
