"""A campaign template's letter, from what was written to what the outbox stores (pure)."""

from __future__ import annotations

import pytest

from postroom.campaigns.letters import (
    css_inlined,
    letter_build,
    letter_check,
    letter_warnings,
    links_tracked,
)
from postroom.mail.merge_rules import TemplateError


def test_css_is_inlined_and_merge_tags_between_table_rows_stay_where_they_were() -> None:
    html = (
        "<style>td { color: red; }</style><table><tr>{% if contact.first_name %}"
        "<td>Hi {{ contact.first_name }}</td>{% endif %}</tr></table>"
    )
    inlined = css_inlined(html)
    assert '<td style="color: red;">Hi {{ contact.first_name }}</td>' in inlined
    # An HTML parser alone would move the text {% if %} out of the table, before it.
    assert inlined.index("{% if contact.first_name %}") > inlined.index("<tr>")
    assert inlined.index("{% endif %}") > inlined.index("</td>")


def test_a_merge_tag_inside_an_attribute_is_kept_as_written() -> None:
    inlined = css_inlined('<a href="{{ unsubscribe.url }}">Leave</a>')
    assert 'href="{{ unsubscribe.url }}"' in inlined


def test_without_a_text_part_one_is_generated_and_an_unsubscribe_line_is_added() -> None:
    letter = letter_build(html="<p>Hello {{ contact.first_name }}</p>", text="", is_tracking=False)
    assert "Hello {{ contact.first_name }}" in letter.text
    assert "Unsubscribe: {{ unsubscribe.url }}" in letter.text
    assert '<a href="{{ unsubscribe.url }}"' in letter.html


def test_a_letter_with_its_own_unsubscribe_link_gets_no_second_one() -> None:
    html = '<p>Bye: <a href="{{ unsubscribe.url }}">unsubscribe</a></p>'
    letter = letter_build(html=html, text="Leave: {{ unsubscribe.url }}", is_tracking=False)
    assert letter.html.count("unsubscribe.url") == 1
    assert letter.text.count("unsubscribe.url") == 1


def test_tracking_rewrites_plain_links_only_and_adds_a_pixel() -> None:
    html = (
        '<a href="https://example.com/a?x=1&amp;y=2">A</a>'
        '<a href="{{ unsubscribe.url }}">leave</a>'
        '<a href="mailto:office@example.com">mail</a>'
        '<a href="https://example.com/{{ contact.email }}">mine</a>'
    )
    rewritten, links = links_tracked(html)
    assert links == ("https://example.com/a?x=1&y=2",)
    assert 'href="{{ tracking.click }}0/"' in rewritten
    assert 'href="{{ unsubscribe.url }}"' in rewritten
    assert "https://example.com/{{ contact.email }}" in rewritten
    letter = letter_build(html=html, text="", is_tracking=True)
    assert "{{ tracking.open }}" in letter.html


def test_without_tracking_no_link_changes_and_no_pixel() -> None:
    letter = letter_build(html='<a href="https://example.com/">A</a>', text="", is_tracking=False)
    assert 'href="https://example.com/"' in letter.html
    assert "tracking" not in letter.html
    assert letter.tracked_links == ()


@pytest.mark.parametrize(
    "html",
    ["{{ contact.middle_name }}", "{{ order.number }}", "{% for x in y %}{% endfor %}"],
)
def test_a_letter_naming_what_a_campaign_does_not_have_is_refused(html: str) -> None:
    with pytest.raises(TemplateError):
        letter_check(subject="Hi", html=html, text="")


def test_the_warnings_name_clipping_a_missing_text_part_and_images_without_alt() -> None:
    warnings = letter_warnings(
        html='<img src="logo.png"><img src="x.png" alt="">',
        text_written="",
        rendered_html_bytes=150 * 1024,
    )
    text = " ".join(warnings)
    assert "Gmail clips" in text
    assert "No plain-text part" in text
    assert "1 image(s) without alt text (logo.png)" in text
    assert "no {{ unsubscribe.url }} link" in text


def test_a_small_letter_with_text_alt_and_link_has_no_warning() -> None:
    assert (
        letter_warnings(
            html='<img src="a.png" alt="Logo"><a href="{{ unsubscribe.url }}">x</a>',
            text_written="Hi",
            rendered_html_bytes=2000,
        )
        == []
    )
