"""The layout explains the architecture: packages depend one way only.

``bot.slack`` is the Slack protocol and knows nothing of hooks or triggers; ``bot.triggers``
and ``bot.webhooks`` know the protocol but not each other; ``bot.conversation`` sits on top.
A module-level import cycle between two packages would blur that, so it fails here.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

BOT = Path(__file__).parent.parent / "bot"


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def package_imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in BOT.rglob("*.py"):
        module = ".".join(path.relative_to(BOT.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target.startswith("bot."):
                    edges[package_of(module)].add(package_of(target))
    return edges


def packages() -> list[str]:
    return sorted(f"bot.{path.parent.name}" for path in BOT.glob("*/__init__.py"))


def test_no_two_packages_import_each_other() -> None:
    edges = package_imports()
    cycles = [
        (a, b) for a, b in itertools.combinations(packages(), 2) if b in edges[a] and a in edges[b]
    ]
    assert cycles == []


def test_the_slack_protocol_knows_nothing_of_what_the_bot_does() -> None:
    what_it_does = {"bot.triggers", "bot.webhooks", "bot.conversation"}
    assert package_imports()["bot.slack"] & what_it_does == set()


def test_hooks_and_triggers_do_not_know_each_other() -> None:
    edges = package_imports()
    assert "bot.webhooks" not in edges["bot.triggers"]
    assert "bot.triggers" not in edges["bot.webhooks"]
