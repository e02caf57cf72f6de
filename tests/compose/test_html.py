"""Sanitizing rich-text HTML, and the plain-text alternative written from it."""

from __future__ import annotations

import pytest

from postroom.compose.html import (
    html_document,
    html_is_blank,
    html_sanitize,
    html_to_text,
    text_to_html,
)


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("<p>Hi<script>alert(1)</script></p>", "<p>Hi</p>"),
        ('<p><img src="x" onerror="alert(1)">Hi</p>', "<p>Hi</p>"),
        ('<p onclick="steal()" style="display:none">Hi</p>', "<p>Hi</p>"),
        (
            '<a href="javascript:alert(1)">click</a>',
            '<a rel="noopener noreferrer">click</a>',
        ),
        (
            '<a href="JaVaScRiPt:alert(1)">click</a>',
            '<a rel="noopener noreferrer">click</a>',
        ),
        (
            '<a href="data:text/html,&lt;script&gt;">click</a>',
            '<a rel="noopener noreferrer">click</a>',
        ),
        ("<style>p { color: red }</style><p>Hi</p>", "<p>Hi</p>"),
        ("<iframe src='https://evil.example'></iframe><p>Hi</p>", "<p>Hi</p>"),
        ("<form action='https://evil.example'><input name=a></form>Hi", "Hi"),
        ("<!-- secret --><p>Hi</p>", "<p>Hi</p>"),
        ("<svg><script>alert(1)</script></svg>Hi", "Hi"),
    ],
)
def test_sanitizing_removes_what_could_run_or_hide(dirty: str, clean: str) -> None:
    assert html_sanitize(dirty) == clean


def test_sanitizing_keeps_the_editors_formatting_and_gives_links_noopener() -> None:
    html = (
        "<p><b>Bold</b> <strong>strong</strong> <i>it</i> <em>em</em> <u>u</u></p>"
        "<ul><li>one</li></ul><ol><li>two</li></ol><blockquote>q</blockquote>"
        '<p><a href="https://acme.example/q?a=1&amp;b=2" title="Quote">quote</a></p>'
    )
    cleaned = html_sanitize(html)
    assert cleaned == html.replace('title="Quote">', 'title="Quote" rel="noopener noreferrer">')


def test_sanitizing_keeps_merge_fields_in_text_and_links() -> None:
    cleaned = html_sanitize(
        '<p>Dear {{ contact.first_name }}, <a href="{{ user.email }}">me</a></p>'
    )
    assert "{{ contact.first_name }}" in cleaned and 'href="{{ user.email }}"' in cleaned


def test_the_text_alternative_has_paragraphs_line_breaks_lists_and_links() -> None:
    html = (
        "<h1>Quote 1042</h1>"
        "<p>Dear <b>Ann</b>,<br>here it is.</p>"
        "<ul><li>Widgets</li>"
        "<li>Gadgets, see <a href='https://acme.example/g'>the list</a></li></ul>"
        "<ol><li>Sign</li><li>Return</li></ol>"
        "<p>Write to <a href='mailto:alice@acme.example'>alice@acme.example</a> or "
        "<a href='https://acme.example'>https://acme.example</a>.</p>"
        "<blockquote><p>Earlier mail</p></blockquote>"
        "<p>Tom &amp; Jerry &lt;3</p>"
    )
    assert html_to_text(html) == (
        "Quote 1042\n"
        "\n"
        "Dear Ann,\n"
        "here it is.\n"
        "\n"
        "- Widgets\n"
        "- Gadgets, see the list (https://acme.example/g)\n"
        "\n"
        "1. Sign\n"
        "2. Return\n"
        "\n"
        "Write to alice@acme.example or https://acme.example.\n"
        "\n"
        "> Earlier mail\n"
        "\n"
        "Tom & Jerry <3\n"
    )


def test_the_text_alternative_leaves_out_scripts_and_styles_and_collapses_blanks() -> None:
    html = "<style>p{}</style><script>x()</script><p>  one\n   two  </p><div>line</div>"
    assert html_to_text(html) == "one two\n\nline\n"


def test_a_browsers_editor_lines_and_empty_lines_are_kept() -> None:
    assert html_to_text("<div>one</div><div><br></div><div>two</div>") == "one\n\ntwo\n"


def test_nested_lists_are_indented() -> None:
    html = "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>"
    assert html_to_text(html) == "- a\n  - b\n- c\n"


def test_an_editor_left_empty_is_blank() -> None:
    assert html_is_blank("<p><br></p>") and html_is_blank("") and not html_is_blank("<p>x</p>")


def test_plain_text_becomes_escaped_paragraphs() -> None:
    assert text_to_html("Hi <Ann>\nline two\n\nP2") == "<p>Hi &lt;Ann&gt;<br>line two</p><p>P2</p>"


def test_the_html_part_is_a_document() -> None:
    document = html_document("<p>Hi</p>")
    assert document.startswith("<!DOCTYPE html>") and "<body>\n<p>Hi</p>\n</body>" in document
