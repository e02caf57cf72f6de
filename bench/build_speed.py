"""How long building one message takes: `build_message` (EmailMessage) vs `CompiledTemplate.render`.

    .venv/bin/python bench/build_speed.py [--count 20000] [--exact-count 2000] [--repeat 3]

Both produce the same bytes (tests/mail/test_bulk.py proves it); this prints µs per message
for each, wall-clock and CPU (process time, less disturbed by other processes on the machine).
The message is a ~2.7 KB invoice notice with text and HTML parts, a merged subject, two merge
fields in each body and a List-Unsubscribe header; some recipients have non-ASCII names (and
so non-ASCII To and Subject headers): the share is printed. Target: render
≤ 50 µs per message, so building is not what limits the outbox's 2,000 msg/s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from postroom.mail.addresses import Address, parse_address
from postroom.mail.bulk import compile_template
from postroom.mail.message import OutgoingEmail, build_message

_ITEM = "Item {n:03d}  Widget, stainless, 40 mm ................ 2 x 12.50 EUR\n"
TEXT = (
    "Dear {{ first_name }},\n\n"
    "please find below the details of invoice {{ invoice }}. Payment is due within 30 days.\n\n"
    + "".join(_ITEM.format(n=n) for n in range(1, 14))
    + "\nTotal: 325.00 EUR\n\nKind regards,\nExample Trading, accounts department\n"
)
HTML = (
    "<html><body><p>Dear {{ first_name }},</p>\n"
    "<p>please find below the details of invoice <b>{{ invoice }}</b>.</p>\n<table>\n"
    + "".join(
        f'<tr><td class="item">Item {n:03d}</td><td>Widget, stainless</td><td>25.00</td></tr>\n'
        for n in range(1, 10)
    )
    + "</table>\n<p>Kind regards,<br>Example Trading</p></body></html>\n"
)
SUBJECT = "Invoice {{ invoice }} for {{ first_name }}"
NAMES = ["Jane Doe", "John Smith", "Zoë Müller", "Mary-Ann O'Neil", "Hiroshi Tanaka", "José García"]
FIRST = ["Jane", "John", "Zoë", "Mary-Ann", "Hiroshi", "José"]


def _recipients(count: int) -> list[tuple[Address, dict[str, str]]]:
    people = []
    for index in range(count):
        # Every fourth recipient is picked from all names (half of them non-ASCII).
        name = NAMES[index % len(NAMES)] if index % 4 == 2 else NAMES[index % 2]
        values = {"first_name": name.split()[0], "invoice": f"INV-{100000 + index}"}
        people.append((parse_address(f'"{name}" <customer{index}@example.net>'), values))
    return people


def _merge(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{{ " + name + " }}", value)
    return template


def _timed(label: str, count: int, run: Callable[[int], object], repeat: int) -> float:
    # The best of `repeat` runs, as timeit does: other processes only ever add time.
    wall = cpu = float("inf")
    for _ in range(repeat):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        for index in range(count):
            run(index)
        wall = min(wall, time.perf_counter() - wall_start)
        cpu = min(cpu, time.process_time() - cpu_start)
    print(
        f"{label:32s} {count:7d} messages  {wall / count * 1e6:8.1f} µs wall  "
        f"{cpu / count * 1e6:8.1f} µs CPU"
    )
    return cpu / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="renders to time")
    parser.add_argument("--exact-count", type=int, default=2_000, help="build_message calls")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()

    sender = parse_address("Example Trading <billing@example.com>")
    template = compile_template(
        from_=sender,
        subject_template=SUBJECT,
        text_template=TEXT,
        html_template=HTML,
        headers={"List-Unsubscribe": "<mailto:unsubscribe@example.com>"},
    )
    people = _recipients(min(args.count, 1000))
    date = datetime(2025, 7, 1, 9, 30, tzinfo=UTC)
    message_ids = [f"<{index:032x}@example.com>" for index in range(len(people))]

    def exact(index: int) -> bytes:
        to, values = people[index % len(people)]
        email = OutgoingEmail(
            from_=sender,
            to=[to],
            subject=_merge(SUBJECT, values),
            text=_merge(TEXT, values),
            html=_merge(HTML, values),  # the values need no HTML escaping
            headers={"List-Unsubscribe": "<mailto:unsubscribe@example.com>"},
        )
        return build_message(
            email,
            message_id=message_ids[index % len(people)],
            date=date,
            boundary=template.boundary,
        ).raw

    def fast(index: int) -> bytes:
        to, values = people[index % len(people)]
        return template.render(
            to=to, message_id=message_ids[index % len(people)], date=date, values=values
        )

    size = len(fast(0))
    non_ascii = sum(not to.display_name.isascii() for to, _ in people) / len(people)
    same = sum(exact(i) == fast(i) for i in range(min(len(people), 200)))
    print(
        f"message size ≈ {size} bytes; {non_ascii:.0%} non-ASCII names; "
        f"byte-identical in {same} of {min(len(people), 200)}"
    )
    exact_cpu = _timed("build_message (EmailMessage)", args.exact_count, exact, args.repeat)
    fast_cpu = _timed("CompiledTemplate.render", args.count, fast, args.repeat)
    print(
        f"render is {exact_cpu / fast_cpu:.0f}x faster (CPU); target ≤ 50 µs per render: "
        f"{'met' if fast_cpu <= 50e-6 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
