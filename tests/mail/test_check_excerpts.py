"""Check connection shows what a server said only as a short, marked excerpt (issue 7 §5).

Check connection connects to whatever host and port the administrator typed and shows what
answers there. Pointed at a port that is not a mail server (an internal service with a long
banner), it must not copy that service's text out in full through the Company page, the API
or `postroom doctor`; nor pass its control characters to a terminal.
"""

from __future__ import annotations

import asyncio

from postroom.mail.check_report import SERVER_TEXT_SHOWN, CheckReport, StepStatus
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.diagnostics import check_connection
from tests.support.faultsmtp import CLOSE, FaultScript, fault_smtp

FAST = Timeouts(connect=2, command=5, data=5)
# What the service behind the port would rather keep to itself: far more than an excerpt.
PRIVATE = "row-17:api_key=9f3a;" * 200
CUT_MARK = "more characters from the server not shown]"


def check(script: FaultScript) -> CheckReport:
    with fault_smtp(script) as server:
        config = SmtpServerConfig(
            host=server.host, port=server.port, tls=TlsPolicy.NONE, timeouts=FAST
        )
        return asyncio.run(check_connection(config, senders=["alice@example.com"]))


def assert_shows_only_an_excerpt(report: CheckReport) -> None:
    transcript = report.transcript()
    assert PRIVATE[: SERVER_TEXT_SHOWN + 1] not in transcript
    assert CUT_MARK in transcript


def test_a_foreign_services_banner_is_cut_to_a_marked_excerpt() -> None:
    banner = f"SSH-2.0-OpenSSH_9.6 {PRIVATE}\r\n".encode()
    report = check(FaultScript(greeting=[banner, CLOSE]))
    greeting = report.step("greeting")
    assert greeting is not None and greeting.status is StepStatus.FAIL
    assert "SSH-2.0-OpenSSH_9.6" in greeting.summary  # enough to tell what answers there
    assert_shows_only_an_excerpt(report)


def test_a_long_multi_line_greeting_is_cut_to_a_marked_excerpt() -> None:
    lines = [f"220-{PRIVATE[i : i + 400]}" for i in range(0, len(PRIVATE), 400)]
    report = check(FaultScript(greeting=[*lines, "220 ready"]))
    greeting = report.step("greeting")
    assert greeting is not None and greeting.status is StepStatus.OK
    assert_shows_only_an_excerpt(report)


def test_a_huge_ehlo_name_is_cut_to_a_marked_excerpt() -> None:
    report = check(FaultScript(ehlo=[f"250-{PRIVATE.replace(';', '.')}", "250 PIPELINING"]))
    ehlo = report.step("ehlo")
    assert ehlo is not None and ehlo.status is StepStatus.OK
    assert PRIVATE.replace(";", ".")[: SERVER_TEXT_SHOWN + 1] not in report.transcript()
    assert CUT_MARK in ehlo.summary


def test_control_characters_from_the_server_never_reach_the_report() -> None:
    # ESC sequences would clear or retitle the terminal `postroom doctor` prints to.
    report = check(FaultScript(greeting="220 mx\x1b[2J\x1b]0;owned\x07 ready"))
    greeting = report.step("greeting")
    assert greeting is not None and greeting.status is StepStatus.OK
    assert "\x1b" not in report.transcript() and "\x07" not in report.transcript()
    assert greeting.summary.startswith("220 mx")


def test_an_ordinary_reply_is_shown_whole_and_unmarked() -> None:
    report = check(FaultScript(greeting="220 mx.example.com ESMTP Postfix (Debian/GNU)"))
    greeting = report.step("greeting")
    assert greeting is not None
    assert greeting.summary == "220 mx.example.com ESMTP Postfix (Debian/GNU)"
    assert CUT_MARK not in report.transcript()
