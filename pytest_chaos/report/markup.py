"""What the HTML report's parts share in writing markup: names made safe for CSS classes
and anchors."""

from __future__ import annotations


def slug(text: str) -> str:
    """``text`` with every character but letters and digits made ``-``: a CSS class or an
    anchor from a verdict, an outcome or a node id."""
    return "".join(c if c.isalnum() else "-" for c in text)
