"""List-Unsubscribe on the wire (pure): URLs kept whole, folded only after their commas, the
same bytes from the bulk renderer and the exact builder."""

from __future__ import annotations

import datetime as dt

from postroom.mail.addresses import Address
from postroom.mail.bulk import compile_template
from postroom.mail.folding import fold_url_list
from postroom.mail.message import build_message

LONG = "https://postroom.example.com/u/" + "a" * 80 + "/"
MAILTO = "mailto:news@acme.example?subject=unsubscribe%20" + "b" * 60


def test_a_list_of_long_urls_folds_after_the_comma_and_never_encodes() -> None:
    folded = fold_url_list("List-Unsubscribe", f"<{LONG}>, <{MAILTO}>")
    assert folded == f"List-Unsubscribe: <{LONG}>,\r\n <{MAILTO}>\r\n"


def test_short_urls_share_a_line_and_other_text_is_not_a_url_list() -> None:
    assert fold_url_list("List-Help", "<https://a.example/>, <mailto:a@a.example>") == (
        "List-Help: <https://a.example/>, <mailto:a@a.example>\r\n"
    )
    assert fold_url_list("List-Help", "see https://a.example/") is None
    assert fold_url_list("List-Help", "<https://a.example/ with blank>") is None


def test_the_bulk_renderer_and_the_exact_builder_write_the_same_bytes() -> None:
    template = compile_template(
        from_=Address("Acme", "news@acme.example"),
        subject_template="Hi",
        text_template="Hello",
        html_template=None,
        headers={
            "List-Unsubscribe": "<{{ u }}>, <{{ m }}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    to, date, values = (
        Address("", "ann@example.net"),
        dt.datetime(2030, 1, 2, tzinfo=dt.UTC),
        {
            "u": LONG,
            "m": MAILTO,
        },
    )
    raw = template.render(to=to, message_id="<m@acme.example>", date=date, values=values)
    exact = build_message(
        template.merged_email(to=to, values=values),
        message_id="<m@acme.example>",
        date=date,
        boundary=template.boundary,
    ).raw
    assert raw == exact
    assert f"List-Unsubscribe: <{LONG}>,\r\n <{MAILTO}>\r\n".encode() in raw
