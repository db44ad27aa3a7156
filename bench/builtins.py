"""Time every builtin a template can reach on its worst input: the longest single step.

Run ``python -m bench.builtins`` (about a minute; ``--all`` lists every case, ``--only
WORD`` runs the cases whose name contains WORD). Each case is an expression evaluated in
the real sandbox (`bot.expressions`) with no deadline, in a forked child killed after 5 s;
what is measured is the longest stretch of CPU time between two deadline checks, that is
how far past its deadline a render could run. Inputs are as large as the limits allow:
2 MB strings, lists and dicts whose printed size is just under 2 MB.

The cases are the hand-written worst inputs below, plus a sweep: every filter on a long
string, a long list and a big dict, and every str, bytes, list and dict method called
with no arguments. A name with no hand-written case is listed at the end.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from jinja2 import meta

from bot.expressions import (
    ExpressionError,
    GuardedEnvironment,
    RenderError,
    compile_expression,
    evaluate,
)

SLOW = 0.050  # seconds

N = 2_000_000
# Built in the child, only those a case uses: values inherited through fork would make
# every reference count update copy a page, and that time would count as the case's.
INPUTS: Mapping[str, Callable[[], Any]] = {
    "s": lambda: "a" * N,
    "w": lambda: "ab " * (N // 3),
    "l": lambda: "x\n" * (N // 2),
    "u": lambda: "ü" * N,
    "ints": lambda: list(range(199_000)),
    "strs": lambda: [str(i) for i in range(200_000)],
    "big": lambda: [str(i % 100_000) for i in range(220_000)],
    "half": lambda: "a" * (N // 2),
    "halfb": lambda: "a" * (N // 2 - 1) + "b",
    "bneedle": lambda: "b" + "a" * 999_999,
    "tags": lambda: "<a" * (N // 2),
    "dicts": lambda: [{"k": i % 7, "v": str(i)} for i in range(60_000)],
    "pairs": lambda: [[str(i), i] for i in range(80_000)],
    "d": lambda: {str(i): i for i in range(100_000)},
    "lists": lambda: [[0] * 999 + [i] for i in range(400)],
    "urls": lambda: "a.b " * (N // 4),
    "dots": lambda: "a." * (N // 2),
    "cent": lambda: "a" * 99 + "b",
    "a100": lambda: "a" * 100,
    "zeros": lambda: [0] * 499_000,
}

CASES = {
    # filters
    "wordwrap(2)": "s|wordwrap(2)|length",
    "wordwrap(79) words": "w|wordwrap(79)|length",
    "wordwrap(2) words": "w|wordwrap(2)|length",
    "title words": "w|title|length",
    "capitalize": "s|capitalize|length",
    "wordcount": "w|wordcount",
    "urlencode str": "u|urlencode|length",
    "urlencode dict": "d|urlencode|length",
    "striptags": "tags|striptags|length",
    "striptags words": "w|striptags|length",
    "escape": "tags|e|length",
    "sort str": "s|sort|length",
    "sort strs": "big|sort|length",
    "sort ints": "ints|sort|length",
    "sort lists": "lists|sort|length",
    "sort attr": "dicts|sort(attribute='v')|length",
    "unique str": "s|unique|list|length",
    "unique strs": "big|unique|list|length",
    "groupby": "dicts|groupby('k')|length",
    "dictsort": "d|dictsort|length",
    "list str": "s|list|length",
    "max str": "s|max",
    "min strs": "big|min",
    "sum ints": "ints|sum",
    "select str": "s|select|list|length",
    "reject strs": "big|reject('none')|list|length",
    "selectattr": "dicts|selectattr('k')|list|length",
    "map upper": "big|map('upper')|list|length",
    "map attr": "dicts|map(attribute='v')|list|length",
    "batch": "big|batch(3)|list|length",
    "slice": "big|slice(3)|list|length",
    "join strs": "big|join(',')|length",
    "join str": "s|join(',')|length",
    "tojson": "dicts|tojson|length",
    "string lists": "dicts|string|length",
    "indent": "l|indent(4)|length",
    "truncate": "w|truncate(1000000)|length",
    "trim chars": "s|trim('b' * 1000000 + 'a')|length",
    "replace": "s|replace('a', 'b')|length",
    "format": "'%s'|format(s)|length",
    "reverse": "s|reverse|length",
    "reverse strs": "big|reverse|list|length",
    "first/last": "big|last",
    "random": "big|random",
    "int": "('9' * 4000)|int",
    "float": "('9' * 2000000)|float",
    "filesizeformat": "(10 ** 3000)|filesizeformat",
    "xmlattr": "d|xmlattr|length",
    "items": "d|items|list|length",
    "center": "s|center(1000)|length",
    "urlize 50k": "s[:50000]|urlize|length",
    "urlize 50k urls": "urls[:50000]|urlize|length",
    # str methods
    "strip chars": "s.strip('b' * 1000000 + 'a')|length",
    "lstrip chars": "s.lstrip('b' * 1000000 + 'a')|length",
    "rstrip chars": "s.rstrip('b' * 1000000 + 'a')|length",
    "split": "w.split()|length",
    "split sep": "s.split('a')|length",
    "splitlines": "l.splitlines()|length",
    "rsplit": "w.rsplit(' ')|length",
    "partition": "s.partition(halfb)|length",
    "find": "s.find(halfb)",
    "find 100": "s.find(cent)",
    "rfind": "s.rfind(bneedle)",
    "rfind 100": "s.rfind('b' + a100)",
    "rindex": "s.rindex('a' * 999999)",
    "count": "s.count(halfb)",
    "count 100": "s.count(cent)",
    "in": "halfb in s",
    "in 100": "cent in s",
    "startswith": "s.startswith(half)",
    "replace method": "s.replace(halfb, 'x')|length",
    "replace method 100": "s.replace(cent, 'x')|length",
    "rsplit 100": "s.rsplit(cent)|length",
    "split long": "s.split(halfb)|length",
    "index": "s.index(halfb) if halfb in s else 0",
    "translate": "u.translate({252: 'x'})|length",
    "maketrans": "s.maketrans(s[:100000], s[:100000])|length",
    "title method": "w.title()|length",
    "swapcase": "u.swapcase()|length",
    "casefold": "u.casefold()|length",
    "upper ß": "('ß' * 1000000).upper()|length",
    "expandtabs": "s.expandtabs(8)|length",
    "isidentifier": "s.isidentifier()",
    "zfill": "s.zfill(1000)|length",
    "format method": "'{}'.format(s)|length",
    "encode utf-8": "u.encode('utf-8')|length",
    "encode utf-7": "u.encode('utf-7')|length",
    "encode punycode 20k": "u[:20000].encode('punycode')|length",
    "encode punycode 100k": "u[:100000].encode('punycode')|length",
    "encode punycode 200k mixed": "(w[:200000] ~ u[:2000]).encode('punycode')|length",
    "encode idna": "dots.encode('idna')|length",
    "encode idna uni": "('ü.' * 1000000).encode('idna')|length",
    "encode unicode_escape": "u.encode('unicode_escape')|length",
    "encode xmlcharref": "u.encode('ascii', 'xmlcharrefreplace')|length",
    "encode namereplace": "u.encode('ascii', 'namereplace')|length",
    "encode gb18030": "u.encode('gb18030')|length",
    "encode iso2022_jp": "('あ' * 2000000).encode('iso2022_jp')|length",
    "encode cp037": "s.encode('cp037')|length",
    "encode hz": "s.encode('hz')|length",
    "decode punycode": "('a' * 100000 + '-' + 'b' * 20000).encode('ascii').decode('punycode')|length",
    "decode idna": "dots.encode('ascii').decode('idna')|length",
    "decode utf-7": "('+AAA' * 500000).encode('ascii').decode('utf-7')|length",
    "decode unicode_escape": "('\\\\x41' * 400000).encode('ascii').decode('unicode_escape')|length",
    "bytes hex": "s.encode().hex()|length",
    "bytes hex sep": "s.encode().hex('-', 1)|length",
    "bytes strip": "s.encode().strip(('b' * 1000000 + 'a').encode())|length",
    "bytes find": "s.encode().rfind(bneedle.encode())",
    # lists, dicts, operators
    "list index": "lists.index([1])",
    "list count": "big.count('x')",
    "list eq": "lists == lists",
    "list in": "['x'] in lists",
    "dict fromkeys": "{}.fromkeys(s)|length",
    "dict fromkeys strs": "{}.fromkeys(big)|length",
    "set-like unique ints": "ints|unique|list|length",
    "lt lists": "lists < lists",
    "str mod": "'%s' % (s,)",
    "pow float": "2.0 ** 1000000.5",
    "int ops": "(10 ** 3000) // 7",
    "int str": "(2 ** 9999)|string|length",
    "deep": "(10 ** 3000)|string|length",
    "striptags <>": "('<>' * 1000000)|striptags|length",
    "striptags <> 100k": "('<>' * 50000)|striptags|length",
    "unescape": "(('&#1;' * 500000)|e).unescape()|length",
    "unescape 100k": "(('&#1;' * 25000)|safe).unescape()|length",
    "markup center": "('x'|e).center(999999999)|length",
    "bytes center": "'x'.encode().center(999999999)|length",
    "bytes mod": "b|length if (b := 1) else ('%0999999999d'.encode() % 1)|length",
    "int base2 floordiv": "('1' * 2000000)|int(base=2) // (('1' * 1000000)|int(base=2))",
    "title 50k": "w[:50000]|title|length",
    "wordwrap 10k": "s[:10000]|wordwrap(1)|length",
    "wordwrap 1.3M": "('a' * 1300000)|wordwrap(2)|length",
    "urlencode 50k": "u[:50000]|urlencode|length",
    "sort 20k chars": "s[:10000]|sort|length",
    "sort 20k strs": "big[:10000]|sort|length",
    "groupby 20k": "dicts[:10000]|groupby('k')|length",
    "unique all equal": "s|unique|list|length",
    "select falsy": "zeros|select|list|length",
    "map gen sort": "big|map('string')|sort|length",
    "strip 100": "s.strip('b' * 99 + 'a')|length",
    "trim 100": "s|trim('b' * 99 + 'a')|length",
    "walk zeros": "zeros|length",
    "tojson zeros": "zeros|tojson|length",
    "string zeros": "zeros|string|length",
    "join zeros": "zeros|join|length",
    "sum zeros": "zeros|sum",
    "fromkeys zeros": "{}.fromkeys(zeros)|length",
    "fromhex": "s.encode().fromhex('ab' * 1000000)|length",
    "ljust": "s.ljust(1000)|length",
    "format_map": "'{a}{a}'.format_map({'a': half})|length",
    "rejectattr": "dicts|rejectattr('k')|list|length",
    "first": "big|first",
    "default": "missing|default(s)|length",
    "attr": "d|attr('items')",
    "link": "s|link(s)|length",
    "raw": "tags|raw|length",
    "json": "dicts|json|length",
    "escape filter": "tags|escape|length",
    "forceescape": "tags|forceescape|length",
    "removeprefix": "s.removeprefix(half)|length",
    "rpartition": "s.rpartition(halfb)|length",
    "endswith": "s.endswith(half)",
    "dict get/keys/values/copy": "[d.get('1'), d.keys()|list|length, d.values()|list|length, d.copy()|length]",
    "list copy": "big.copy()|length",
    "round abs": "[(10 ** 300)|round, (-10 ** 3000)|abs]",
}


def sweep() -> dict[str, str]:
    """Every filter on each kind of input, every method with no arguments."""
    cases = {}
    for name in sorted(GuardedEnvironment().filters):
        for value in ("s", "big", "d"):
            cases[f"sweep {value}|{name}"] = f"{value}|{name}"
    for value, kind in (("s", str), ("s.encode()", bytes), ("big", list), ("d", dict)):
        for method in sorted(m for m in dir(kind) if not m.startswith("_")):
            cases[f"sweep {kind.__name__}.{method}()"] = f"{value}.{method}()"
    return cases


def uncovered() -> list[str]:
    """Names that only the sweep calls (with no arguments or on a generic input)."""
    text = " ".join(CASES.values())
    names = set(GuardedEnvironment().filters)
    for kind in (str, bytes, list, dict):
        names |= {m for m in dir(kind) if not m.startswith("_")}
    return sorted(n for n in names if f"|{n}" not in text and f".{n}(" not in text)


def longest_step(source: str, answer: Connection) -> None:
    """In the child: evaluate with the deadline check instrumented."""
    last = [0.0]
    longest = [0.0]
    check = GuardedEnvironment.tick

    def timed_tick(self: GuardedEnvironment) -> None:
        now = time.process_time()
        longest[0] = max(longest[0], now - last[0])
        last[0] = now
        check(self)

    GuardedEnvironment.tick = timed_tick  # type: ignore[method-assign]
    try:
        expression = compile_expression(source)
    except ExpressionError as error:
        answer.send((0.0, f"compile error: {error}"))
        return
    names = meta.find_undeclared_variables(GuardedEnvironment().parse("{{ " + source + " }}"))
    context = {name: INPUTS[name]() for name in names if name in INPUTS}
    last[0] = time.process_time()
    try:
        evaluate(expression, context, time_limit=math.inf)
        result = "ok"
    except RenderError as error:
        result = f"refused: {error}"
    longest[0] = max(longest[0], time.process_time() - last[0])
    answer.send((longest[0], result[:200]))


def measure(source: str) -> tuple[float, str]:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=longest_step, args=(source, send))
    child.start()
    child.join(5)
    if child.is_alive():
        child.kill()
        child.join()
        return math.inf, "still running after 5 s: killed"
    if not receive.poll():
        return math.inf, f"died ({child.exitcode})"
    seconds, result = receive.recv()
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--all", action="store_true", help="list every case, not the slow ones")
    options = parser.parse_args()
    cases = {**CASES, **sweep()}
    slow = 0
    for name, source in cases.items():
        if options.only and not any(word in name for word in options.only):
            continue
        seconds, result = measure(source)
        slow += seconds > SLOW
        if options.all or seconds > SLOW:
            flag = "  <-- SLOW" if seconds > SLOW else ""
            print(f"{seconds * 1000:9.1f} ms  {name:34} {result[:70]}{flag}", flush=True)
    print(f"{len(cases)} cases, {slow} with a step over {SLOW * 1000:.0f} ms")
    print("only swept:", ", ".join(uncovered()))


if __name__ == "__main__":
    main()
