"""Add up the JUnit XML files of all sessions into one closing line."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in sorted(Path(sys.argv[1]).glob("*.xml")):
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"tests: {passed} passed, {failed} failed, {totals['skipped']} skipped")
