"""The audit log speaks in sentences: every action Postroom records has one."""

from __future__ import annotations

import re
from pathlib import Path

from postroom.audit.selectors import ACTION_SENTENCES, audit_action_sentence
from postroom.company.services import SMTP_UPDATED

PACKAGE = Path(__file__).resolve().parent.parent.parent / "postroom"
# action="a.b" in a call of audit_record (the only function that takes an action like that).
_RECORDED = re.compile(r'action="([a-z_]+(?:\.[a-z_]+)+)"')


def recorded_actions() -> set[str]:
    actions = {SMTP_UPDATED}
    for path in PACKAGE.rglob("*.py"):
        actions |= set(_RECORDED.findall(path.read_text()))
    return actions


def test_every_recorded_action_has_a_sentence() -> None:
    missing = sorted(recorded_actions() - set(ACTION_SENTENCES))
    assert not missing, f"give these actions a sentence in ACTION_SENTENCES: {missing}"


def test_the_finder_sees_the_actions_of_every_area() -> None:
    assert {"user.created", "api_key.revoked", "webhook.endpoint.created", "login.locked"} <= (
        recorded_actions()
    )


def test_an_action_without_a_sentence_shows_its_code() -> None:
    assert audit_action_sentence("company.smtp.updated") == "changed SMTP Server Information"
    assert audit_action_sentence("something.new") == "something.new"
