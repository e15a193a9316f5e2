"""The files of a report folder (``--chaos-report DIR``), as the summary writes them and
the HTML report, ``pytest-chaos report`` and game days read them."""

from __future__ import annotations

#: The summary's format: a reader refuses a summary of a format it does not know.
FORMAT = 1
SUMMARY = "summary.json"
JOURNALS = "journals"
