"""SPF (RFC 7208): read a domain's record, count its DNS lookups, evaluate an address against it.

Why an evaluator of our own rather than a library: pyspf (last released in 2020) makes its
lookups through a module-level function over dnspython's default resolver, so pointing it at
POSTROOM_DNS_SERVERS (a "host:port", as the tests' loopback server is) means replacing a global
of the library; checkdmarc takes name server addresses but no port, and evaluates no address.
What a sending setup uses is small: ip4, ip6, a, mx, include, exists, redirect and all, with
the limit of ten DNS-querying terms (§4.6.4). `ptr` is counted but never matches (§5.5: "do not
use"), and a term with macros (§7) is counted but not evaluated, since its value depends on
the message; the check says so rather than guess.

Lookups go through a function given by the caller (postroom.core.dns.dns_lookup), memoised
per walk, so one check asks each name once.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from postroom.core.dns import DnsAnswer, Lookup

# RFC 7208 §4.6.4: at most 10 terms that query the DNS (include, a, mx, ptr, exists and the
# redirect modifier), counted over the whole evaluation, and at most 10 MX names per mx.
LOOKUP_LIMIT = 10
MX_NAMES_LIMIT = 10
# A guard against include loops deeper than any real record (each level costs a lookup, so
# the lookup limit stops a real loop well before this).
MAX_DEPTH = 12

MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
QUERYING = {"include", "a", "mx", "ptr", "exists"}

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LookupFunction = Callable[[str, str], DnsAnswer]


class SpfResult(enum.Enum):
    PASS = "pass"  # noqa: S105 - an SPF result, not a password
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    PERMERROR = "permerror"
    TEMPERROR = "temperror"


_QUALIFIERS = {
    "+": SpfResult.PASS,
    "-": SpfResult.FAIL,
    "~": SpfResult.SOFTFAIL,
    "?": SpfResult.NEUTRAL,
}


class SpfSyntaxError(ValueError):
    """A record that is not valid SPF: a permerror for every receiver (RFC 7208 §4.6)."""


@dataclass(frozen=True)
class Term:
    qualifier: str  # "+", "-", "~" or "?"
    name: str  # the mechanism, lower case
    value: str = ""  # what follows ":" (a domain or a network), without the CIDR lengths
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def has_macro(self) -> bool:
        return "%" in self.value


@dataclass(frozen=True)
class SpfRecord:
    text: str
    terms: tuple[Term, ...]
    redirect: str = ""


def spf_records(texts: tuple[str, ...] | list[str]) -> list[str]:
    """The TXT strings that are SPF records (RFC 7208 §4.5: "v=spf1" then a space or the end)."""
    return [
        text for text in texts if text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")
    ]


def _cidr(text: str, *, limit: int, term: str) -> int:
    if not text.isdigit() or int(text) > limit:
        raise SpfSyntaxError(f"{term!r} has an invalid prefix length")
    return int(text)


def _term(text: str) -> Term:
    qualifier = text[0] if text[0] in _QUALIFIERS else "+"
    body = text[1:] if text[0] in _QUALIFIERS else text
    name, _, rest = body.partition(":")
    cidr4 = cidr6 = None
    if "/" in name:  # "a/24", "mx//64"
        name, _, rest = body.partition("/")
        rest = "/" + rest
    name = name.lower()
    if name not in MECHANISMS:
        raise SpfSyntaxError(f"{text!r} is not an SPF mechanism")
    value = rest
    if name in {"a", "mx"} and "/" in rest:
        value, _, lengths = rest.partition("/")
        four, _, six = lengths.partition("/")
        cidr4 = _cidr(four, limit=32, term=text) if four else None
        cidr6 = _cidr(six, limit=128, term=text) if six else None
    if name in {"include", "exists", "ip4", "ip6"} and not value:
        raise SpfSyntaxError(f"{text!r} needs a value after ':'")
    if name in {"ip4", "ip6"}:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise SpfSyntaxError(f"{text!r} is not a valid address or network") from None
        if (network.version == 4) != (name == "ip4"):
            raise SpfSyntaxError(f"{text!r} names an address of the other IP version")
    if name == "all" and rest:
        raise SpfSyntaxError(f"{text!r}: all takes no value")
    return Term(qualifier, name, value, cidr4, cidr6)


def spf_parse(text: str) -> SpfRecord:
    parts = text.split()
    terms: list[Term] = []
    redirect = ""
    for part in parts[1:]:
        name, equals, value = part.partition("=")
        if equals and ":" not in name and "/" not in name:  # a modifier (§6)
            if name.lower() == "redirect":
                if redirect:
                    raise SpfSyntaxError("the record has two redirect= modifiers")
                redirect = value
            continue  # exp= and unknown modifiers change no result
        terms.append(_term(part))
    return SpfRecord(text=text, terms=tuple(terms), redirect=redirect)


def spf_with_term(text: str, term: str) -> str:
    """The record with `term` added before its "all" (or redirect=), else at its end."""
    parts = text.split() or ["v=spf1"]
    for index, part in enumerate(parts):
        if part.lower().lstrip("+-~?") == "all" or part.lower().startswith("redirect="):
            return " ".join([*parts[:index], term, *parts[index:]])
    return " ".join([*parts, term])


@dataclass
class LookupCount:
    total: int = 0
    includes: set[str] = field(default_factory=set)  # every include/redirect target, lower case
    problems: list[str] = field(default_factory=list)  # includes without a usable record
    is_partial: bool = False  # a lookup failed: the count is at least `total`
    has_unevaluated: bool = False  # ptr or a macro: the relay check may be unsure


class _Abort(Exception):  # noqa: N818 - control flow, not an error a caller meets
    def __init__(self, result: SpfResult) -> None:
        super().__init__(result.value)
        self.result = result


class SpfWalker:
    """Walks one domain's SPF tree; each (name, type) is asked of the DNS once."""

    def __init__(self, lookup: LookupFunction) -> None:
        self._lookup = lookup
        self._answers: dict[tuple[str, str], DnsAnswer] = {}

    def lookup(self, name: str, rdtype: str) -> DnsAnswer:
        key = (name.lower().rstrip("."), rdtype)
        if key not in self._answers:
            self._answers[key] = self._lookup(key[0], rdtype)
        return self._answers[key]

    def record(self, domain: str) -> tuple[DnsAnswer, list[str]]:
        answer = self.lookup(domain, "TXT")
        return answer, spf_records(answer.records) if answer.found else []

    # -- counting -----------------------------------------------------------------------

    def count_lookups(self, domain: str) -> LookupCount:
        count = LookupCount()
        self._count(domain, count, stack=[])
        return count

    def _count(self, domain: str, count: LookupCount, *, stack: list[str]) -> None:
        domain = domain.lower().rstrip(".")
        record = self._countable(domain, count, stack=stack)
        if record is None:
            return
        targets = []
        for term in record.terms:
            if term.name in QUERYING:
                count.total += 1
            if term.name == "ptr" or term.has_macro:
                count.has_unevaluated = True
            elif term.name == "include":
                targets.append(term.value)
        if record.redirect:
            count.total += 1
            if "%" in record.redirect:
                count.has_unevaluated = True
            else:
                targets.append(record.redirect)
        for target in targets:
            count.includes.add(target.lower().rstrip("."))
            self._count(target, count, stack=[*stack, domain])

    def _countable(self, domain: str, count: LookupCount, *, stack: list[str]) -> SpfRecord | None:
        """The record to count at `domain`, or None (noting why in `count`)."""
        if domain in stack or len(stack) > MAX_DEPTH:
            count.problems.append(f"{domain} includes itself (a loop)")
            return None
        answer, records = self.record(domain)
        if answer.lookup is Lookup.FAILED:
            count.is_partial = True
            return None
        if len(records) != 1:
            if stack:  # the top domain's own record is judged by the caller
                how = "no SPF record" if not records else "more than one SPF record"
                count.problems.append(f"{domain} (included) has {how}")
            return None
        try:
            return spf_parse(records[0])
        except SpfSyntaxError as error:
            count.problems.append(f"{domain}: {error}")
            return None

    # -- evaluating ---------------------------------------------------------------------

    def check_host(self, address: IpAddress, domain: str) -> SpfResult:
        """RFC 7208 §4: the result a receiver gets for mail from `address` with `domain` in
        the envelope sender."""
        budget = [LOOKUP_LIMIT]
        try:
            return self._check(address, domain, budget, depth=0)
        except _Abort as abort:
            return abort.result

    def _spend(self, budget: list[int]) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise _Abort(SpfResult.PERMERROR)  # §4.6.4: over the limit is a permerror

    def _check(
        self, address: IpAddress, domain: str, budget: list[int], *, depth: int
    ) -> SpfResult:
        if depth > MAX_DEPTH:
            raise _Abort(SpfResult.PERMERROR)
        answer, records = self.record(domain)
        if answer.lookup is Lookup.FAILED:
            raise _Abort(SpfResult.TEMPERROR)
        if not records:
            return SpfResult.NONE
        if len(records) > 1:
            raise _Abort(SpfResult.PERMERROR)  # §4.5
        try:
            record = spf_parse(records[0])
        except SpfSyntaxError:
            raise _Abort(SpfResult.PERMERROR) from None
        for term in record.terms:
            if term.name in QUERYING:
                self._spend(budget)
            if self._matches(term, address, domain, budget, depth=depth):
                return _QUALIFIERS[term.qualifier]
        if record.redirect:  # §6.1: only when no mechanism matched
            self._spend(budget)
            result = self._check(address, record.redirect, budget, depth=depth + 1)
            return SpfResult.PERMERROR if result is SpfResult.NONE else result
        return SpfResult.NEUTRAL  # §4.7: no match, no redirect

    def _matches(
        self, term: Term, address: IpAddress, domain: str, budget: list[int], *, depth: int
    ) -> bool:
        if term.has_macro or term.name == "ptr":
            return False
        if term.name == "all":
            return True
        if term.name in {"ip4", "ip6"}:
            return address in ipaddress.ip_network(term.value, strict=False)
        if term.name == "include":
            result = self._check(address, term.value, budget, depth=depth + 1)
            if result in {SpfResult.NONE, SpfResult.PERMERROR}:  # §5.2
                raise _Abort(SpfResult.PERMERROR)
            return result is SpfResult.PASS
        target = term.value or domain
        if term.name == "exists":
            return self._addresses(target, "A") != []
        if term.name == "a":
            return self._in(address, self._addresses(target, _rdtype(address)), term)
        names = self._answer(target, "MX")
        if len(names) > MX_NAMES_LIMIT:
            raise _Abort(SpfResult.PERMERROR)
        for mx in names:
            exchange = mx.split()[-1]
            if self._in(address, self._addresses(exchange, _rdtype(address)), term):
                return True
        return False

    def _answer(self, name: str, rdtype: str) -> list[str]:
        answer = self.lookup(name, rdtype)
        if answer.lookup is Lookup.FAILED:
            raise _Abort(SpfResult.TEMPERROR)
        return list(answer.records)

    def _addresses(self, name: str, rdtype: str) -> list[str]:
        return self._answer(name, rdtype)

    @staticmethod
    def _in(address: IpAddress, found: list[str], term: Term) -> bool:
        prefix = term.cidr4 if address.version == 4 else term.cidr6
        for text in found:
            length = prefix if prefix is not None else address.max_prefixlen
            if address in ipaddress.ip_network(f"{text}/{length}", strict=False):
                return True
        return False


def _rdtype(address: IpAddress) -> str:
    return "A" if address.version == 4 else "AAAA"
