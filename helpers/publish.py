"""Publishing the book: its one repository address, and the external-link report.

The repository address is set in one place, ``repository.url`` (and
``repository.branch``) of ``_config.yml``, which Jupyter Book's launch buttons and
repository button read. Everything else that names the repository is written from it by
``python -m helpers.publish sync-urls``:

* the README's Colab badges
  (``https://colab.research.google.com/github/<owner>/<repo>/blob/<branch>/...``, the
  address form Colab documents for notebooks on GitHub);
* the chapters' (and student copies') hidden Colab cell, which clones ``url =
  "https://github.com/<owner>/<repo>"``.

``python -m helpers.publish check-urls`` (and tests/book/test_workflows.py) fail where
any of them differs.

``python -m helpers.publish linkcheck-report <output.json>`` reads what Sphinx's
linkcheck builder wrote (one JSON object per link: ``filename``, ``lineno``, ``status``,
``code``, ``uri``, ``info``) and fails, listing page, line and address, for every link
whose status is ``broken``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

from .results import book_root
from .errors import InputError

__all__ = [
    "repository",
    "self_references",
    "url_problems",
    "sync_urls",
    "broken_links",
    "main",
]

COLAB = re.compile(
    r"https://colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)/blob/([\w./-]+?)/"
    r"((?:notebooks|student)/[\w.-]+\.ipynb)"
)
CLONE = re.compile(r'url = \\?"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?\\?"')


def repository(root: Path | None = None) -> tuple[str, str, str]:
    """(owner, name, branch) of the book's repository: the address that
    :func:`helpers.colab.repository_url` reads from ``_config.yml``, and its branch."""
    from .colab import repository_url

    root = root or book_root()
    url = repository_url(root)
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)/?", url)
    if not match:
        raise InputError(
            f"_config.yml: repository.url must be https://github.com/<owner>/<name>, "
            f"not {url!r}"
        )
    config = yaml.safe_load((root / "_config.yml").read_text())
    branch = str((config.get("repository") or {}).get("branch", "main"))
    return match.group(1), match.group(2), branch


def _files(root: Path) -> list[Path]:
    return [
        root / "README.md",
        *sorted((root / "notebooks").glob("*.ipynb")),
        *sorted((root / "student").glob("*.ipynb")),
    ]


def self_references(root: Path | None = None) -> list[dict]:
    """Every place outside ``_config.yml`` that names the book's repository:
    file, kind, owner, name, branch."""
    root = root or book_root()
    found = []
    for path in _files(root):
        text = path.read_text()
        for m in COLAB.finditer(text):
            found.append(
                {
                    "file": str(path.relative_to(root)),
                    "kind": "colab badge",
                    "owner": m.group(1),
                    "name": m.group(2),
                    "branch": m.group(3),
                    "target": m.group(4),
                }
            )
        for m in CLONE.finditer(text):
            found.append(
                {
                    "file": str(path.relative_to(root)),
                    "kind": "colab clone",
                    "owner": m.group(1),
                    "name": m.group(2),
                    "branch": None,
                    "target": None,
                }
            )
    return found


def url_problems(root: Path | None = None) -> list[str]:
    """What disagrees with ``_config.yml``'s repository, and chapters lacking a
    README badge or a clone cell."""
    root = root or book_root()
    owner, name, branch = repository(root)
    problems = []
    refs = self_references(root)
    for ref in refs:
        if (ref["owner"], ref["name"]) != (owner, name) or ref["branch"] not in (
            None,
            branch,
        ):
            problems.append(
                f"{ref['file']}: {ref['kind']} names {ref['owner']}/{ref['name']}"
                f"{'@' + ref['branch'] if ref['branch'] else ''}, "
                f"_config.yml says {owner}/{name}@{branch}"
            )
    badges = {
        ref["target"]
        for ref in refs
        if ref["kind"] == "colab badge" and ref["file"] == "README.md"
    }
    for path in _files(root)[1:]:
        rel = str(path.relative_to(root))
        if not any(r["file"] == rel and r["kind"] == "colab clone" for r in refs):
            problems.append(f"{rel}: no Colab cell cloning the repository")
        if path.parent.name == "notebooks" and rel not in badges:
            problems.append(f"README.md: no Colab badge for {rel}")
    return problems


def sync_urls(root: Path | None = None) -> list[str]:
    """Rewrite every self-reference (README badges, Colab clone cells) from
    ``_config.yml``; return the changed files."""
    root = root or book_root()
    owner, name, branch = repository(root)
    changed = []
    for path in _files(root):
        text = path.read_text()
        new = COLAB.sub(
            lambda m: (
                "https://colab.research.google.com/github/"
                f"{owner}/{name}/blob/{branch}/"
                f"{m.group(4)}"
            ),
            text,
        )
        new = CLONE.sub(
            lambda m: m.group(0).replace(
                f"{m.group(1)}/{m.group(2)}", f"{owner}/{name}"
            ),
            new,
        )
        if new != text:
            path.write_text(new)
            changed.append(str(path.relative_to(root)))
    return changed


def broken_links(output_json: Path) -> tuple[list[dict], int]:
    """The broken links of a Sphinx linkcheck ``output.json``, and how many links."""
    if not output_json.exists():
        raise FileNotFoundError(
            f"{output_json} does not exist: "
            "the linkcheck builder did not run to the end"
        )
    records = [
        json.loads(line)
        for line in output_json.read_text().splitlines()
        if line.strip()
    ]
    return [r for r in records if r.get("status") == "broken"], len(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.publish", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "sync-urls",
        help="write the repository address of _config.yml into README and notebooks",
    )
    sub.add_parser(
        "check-urls",
        help="fail where README or a notebook names another repository address",
    )
    p_link = sub.add_parser(
        "linkcheck-report", help="fail listing the broken links of Sphinx's linkcheck"
    )
    p_link.add_argument("output_json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "sync-urls":
        changed = sync_urls()
        print("\n".join(changed) if changed else "nothing to change")
    elif args.command == "check-urls":
        problems = url_problems()
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        if problems:
            print(
                "fix: set repository.url / repository.branch in _config.yml, then run "
                "python -m helpers.publish sync-urls",
                file=sys.stderr,
            )
            return 1
        print("every repository address agrees with _config.yml")
    elif args.command == "linkcheck-report":
        try:
            broken, total = broken_links(args.output_json)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        for r in broken:
            print(
                f"error: broken link in {r.get('filename')}:{r.get('lineno')}: "
                f"{r.get('uri')} ({r.get('info')})",
                file=sys.stderr,
            )
        print(f"{total} links checked, {len(broken)} broken")
        return 1 if broken else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
