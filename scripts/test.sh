#!/usr/bin/env bash
# Runs the test matrix CI runs (`nox -t ci`), one session at a time, deleting each session's
# virtualenv afterwards (disk is the limit). Extra arguments name sessions to run instead.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

if [ $# -gt 0 ]; then sessions=("$@"); else
  mapfile -t sessions < <(nox -l -t ci --json | python3 -c \
    'import json, sys; print("\n".join(s["session"] for s in json.load(sys.stdin)))')
fi
rm -rf .ci-results && mkdir -p .ci-results
failed=()
started=$(date +%s)
for session in "${sessions[@]}"; do
  t0=$(date +%s)
  if ! nox -s "$session" -- --junitxml="$PWD/.ci-results/${session//[^A-Za-z0-9_.-]/_}.xml"; then
    failed+=("$session")
  fi
  echo "== $session: $(( $(date +%s) - t0 )) s"
  rm -rf .nox
done
echo "== all sessions: $(( $(date +%s) - started )) s"
python3 scripts/summarize_junit.py .ci-results
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed sessions: ${failed[*]}"
  exit 1
fi
