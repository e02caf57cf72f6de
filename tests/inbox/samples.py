"""Messages for the inbox tests, built with the email package the way real senders build them."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

SCRIPT = "<script>alert('captured')</script>"


def multipart_mail() -> bytes:
    """Text and HTML alternatives, a PDF attachment with a UTF-8 name, an HTML attachment,
    and an inline image: the shapes the Inbox page has to take apart."""
    message = EmailMessage(policy=SMTP)
    message["From"] = "Jörg Müller <joerg@example.com>"
    message["To"] = "Bob <bob@example.net>, carol@example.org"
    message["Subject"] = "Quarterly report ☃"
    message["Message-ID"] = "<report-1@example.com>"
    message.set_content("Hello Bob,\nthe report is attached.\n")
    message.add_alternative(
        "<html><head><style>p { color: teal }</style></head><body>"
        f"<p>Hello <b>Bob</b></p>{SCRIPT}"
        '<img src="https://tracker.example/open.gif">'
        "</body></html>",
        subtype="html",
    )
    message.add_attachment(
        b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="résumé Q3.pdf"
    )
    message.add_attachment(
        f"<html>{SCRIPT}</html>".encode(), maintype="text", subtype="html", filename="evil.html"
    )
    return message.as_bytes()


def plain_mail(subject: str = "Plain hello", to: str = "bob@example.net") -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = "alice@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Just text.\n")
    return message.as_bytes()
