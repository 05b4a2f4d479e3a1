# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One way to keep secrets out of messages: every place that masks a secret calls :func:`redact`.

Every occurrence of every secret is masked, overlaps included: the stretches of text that
belong to any secret are found first, merged where they touch or overlap, and each merged
stretch becomes one ``********``. So a secret that contains another, or two secrets that
overlap in the text (``abcdef`` and ``defgh`` in ``abcdefgh``), leave no tail behind.
"""

from __future__ import annotations

import typing as t

REDACTED = "********"


def redact(text: t.Any, secrets: t.Iterable[t.Any]) -> str:
    """``text`` (made a string) with every stretch covered by a non-empty secret replaced by ``********``."""
    text = str(text)
    stretches = []
    for secret in {str(secret) for secret in secrets if secret}:
        start = text.find(secret)
        while start != -1:
            stretches.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    if not stretches:
        return text
    stretches.sort()
    pieces = []
    position = 0
    merged_start, merged_end = stretches[0]
    for start, end in stretches[1:]:
        if start <= merged_end:
            merged_end = max(merged_end, end)
            continue
        pieces.extend((text[position:merged_start], REDACTED))
        position = merged_end
        merged_start, merged_end = start, end
    pieces.extend((text[position:merged_start], REDACTED, text[merged_end:]))
    return "".join(pieces)
