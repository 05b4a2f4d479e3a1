from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import REDACTED, redact


@pytest.mark.parametrize(
    "secrets",
    [("abc", "abcdef"), ("abcdef", "abc")],
    ids=["short-first", "long-first"],
)
def test_a_secret_containing_another_is_masked_whole_in_any_order(secrets):
    assert redact("token=abcdef;", secrets) == "token=%s;" % REDACTED


def test_overlapping_secrets_leave_no_tail():
    # "abcdef" and "defgh" overlap in the text: masking one and then looking for the other
    # would leave "gh" (or "abc") in clear.
    assert redact("x abcdefgh y", ["abcdef", "defgh"]) == "x %s y" % REDACTED


def test_every_occurrence_is_masked_and_the_rest_kept():
    assert redact("pw1 and pw1, not pw2x", ["pw1"]) == "%s and %s, not pw2x" % (REDACTED, REDACTED)


def test_separate_secrets_are_masked_separately():
    assert redact("user=alice pass=s3cret", ["alice", "s3cret"]) == "user=%s pass=%s" % (REDACTED, REDACTED)


def test_empty_and_missing_secrets_change_nothing():
    assert redact("nothing to hide", ["", None]) == "nothing to hide"
    assert redact(42, []) == "42"


def test_a_secret_repeating_itself_overlaps_its_own_occurrences():
    assert redact("aaaa", ["aaa"]) == REDACTED
