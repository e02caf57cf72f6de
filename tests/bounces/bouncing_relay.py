"""A Postfix relay (tests/support/relay.py) that has one unknown user: mail to
`nosuchuser@` any domain is accepted at RCPT and then bounced by Postfix's own virtual(8)
and bounce(8) daemons ("User unknown in virtual mailbox table", 5.1.1), as a real
RFC 3464 delivery status notification to the envelope sender. Every other address still
lands in the catch-all Maildir, so the bounce itself arrives there too."""

from __future__ import annotations

from tests.support.relay import PostfixRelay

UNKNOWN_USER = "nosuchuser"


class BouncingRelay(PostfixRelay):
    def _write_static_files(self) -> None:
        super()._write_static_files()
        # A regexp table with no match for the user: virtual(8) finds no mailbox and bounces.
        (self._etc / "catchall.regexp").write_text(
            f"if !/^{UNKNOWN_USER}@/\n/.*/ catchall/\nendif\n"
        )
