# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The base of every error ceres.rollout's module utils raise.

module_utils raise domain exceptions; only a module's ``main()`` (or an action plugin's
``run()``) turns them into a failed task, with ``str(error)`` as the message a person reads.
Deriving from :class:`CeresError` lets such a caller catch the collection's errors in one
``except`` without also catching programming errors (``TypeError``, ``KeyError``...).

``changed`` is the one name for "the work changed something before it failed" (a write had
landed): the failed task then reports ``changed: true``. The code that knows sets it, when it
raises the error or as the error passes by (``error.changed = True``).
"""

from __future__ import annotations


class CeresError(Exception):
    """An error of ceres.rollout. ``message`` is what ``str()`` shows; it never holds a
    credential or a Secret's value. ``changed`` tells whether something was changed before
    the failure."""

    def __init__(self, message: str = "", changed: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.changed = changed

    def __str__(self) -> str:
        return self.message

    def add_context(self, context: str) -> CeresError:
        """Put ``context`` in front of the message (``"<context>: <message>"``), keeping the
        exception's type and attributes, so a caller can still tell what failed; returns self."""
        self.message = "%s: %s" % (context, self.message)
        self.args = (self.message,)
        return self
