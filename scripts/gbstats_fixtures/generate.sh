#!/usr/bin/env bash
# Regenerate tests/fixtures/gbstats/*.json from GrowthBook's gbstats 0.8.0.
#
# gbstats 0.8.0 needs numpy<2 and pandas<2, which the project's own environment cannot hold,
# so it gets a virtualenv of its own, next to this script (git-ignored). Safe to rerun: the
# virtualenv is created once and reinstalled only when the pins below change.
#
# Usage: scripts/gbstats_fixtures/generate.sh     (PYTHON=python3.11 to pick the interpreter,
#                                                  GBSTATS_VENV=/path to put the venv elsewhere)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${GBSTATS_VENV:-$HERE/.venv-gbstats}"
PYTHON="${PYTHON:-python3}"
PINS=(
  "gbstats==0.8.0"
  "numpy==1.26.4"
  "pandas==1.5.3"
  "scipy==1.13.1"
  "pydantic>=2.5.3,<3"
)
STAMP="$VENV/.pins"

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
if [[ ! -f "$STAMP" ]] || [[ "$(cat "$STAMP")" != "${PINS[*]}" ]]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
  echo "${PINS[*]}" > "$STAMP"
fi

"$VENV/bin/python" "$HERE/generate.py"
