"""HTML → text cleaners side by side: finassist `clean_html` vs a stdlib HTMLParser baseline vs `unstructured`.

    python benchmarks/clean.py [--unstructured-python /tmp/unst/bin/python] [--data data/sample_news.jsonl]

`unstructured` (with spaCy, numba, …) is kept out of the project's venv: install it into its own, e.g.
`python3 -m venv /tmp/unst && /tmp/unst/bin/pip install unstructured==0.27.32`. Its part runs there, as this same
file in `--worker unstructured` mode, and reports back as JSON. Throughput is the median of 5 passes over all
articles, after one warm-up pass whose output feeds the quality checks. Prints a markdown report.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "data" / "sample_news.jsonl"
REPS = 5
# unstructured pings a telemetry endpoint on import and logs a notice; offline that only adds noise to the timings.
QUIET = {"DO_NOT_TRACK": "1", "SCARF_NO_ANALYTICS": "1", "UNSTRUCTURED_DISABLE_NOTICE": "1"}
# Environment variables that look like they could keep partition_html offline; each is tried in turn.
OFFLINE_ENVS = [{}, {"UNSTRUCTURED_LANGUAGE_CHECKS": "false"}, {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}]

# (check, article id, passes(text)) on concrete articles of the sample data.
CHECKS = [
    ("paragraph breaks kept", 41872845, lambda t: bool(re.search(r"launch customers\.[ \t]*\n\s*\n\s*The company", t))),
    ("script removed", 41878087, lambda t: "@context" not in t and "as resistance." in t),
    ("style removed", 41937905, lambda t: "bz-quote-widget" not in t and "Marlin Peak Group." in t),
    ("entities decoded (&amp;)", 41876315, lambda t: "Grocery & Essentials" in t and "&amp;" not in t),
    ("apostrophe kept (&#8217;)", 41877865, lambda t: bool(re.search(r"Marbleleaf Stores['’]s Q2", t))),
    ("mojibake fixed (donâ€™t, â€œ)", 41873582, lambda t: bool(re.search(r"\bdon['’]t buy", t)) and "â€œ" not in t),
    # the closing quote's third byte (0x9D, undefined in cp1252) is lost in the data: "edge,â€ the"
    ("mojibake fixed (lossy â€ = ”)", 41873582, lambda t: bool(re.search(r"edge,['\"”] the", t)) and "â€" not in t),
    ("accents kept (Raúl)", 41873582, lambda t: "Raúl" in t),
    ("NBSP → space", 41887762, lambda t: "110 basis points" in t and "\xa0" not in t),
    ("zero-width removed", 41900943, lambda t: "Kelvane rose" in t and "\u200b" not in t),
    ("boilerplate removed", 41879553, lambda t: "Click here" not in t and "cleaner balance sheet." in t),
]


class _TextExtractor(HTMLParser):
    """Minimal tag stripper: text of every element except script/style, a paragraph break at block boundaries."""

    SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe"})
    BLOCK = frozenset({"p", "div", "h1", "h2", "h3", "h4", "li", "ul", "ol", "tr", "table", "blockquote", "br", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)  # entities are left in place and decoded by html.unescape below
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)

    def handle_entityref(self, name):
        self.handle_data(f"&{name};")

    def handle_charref(self, name):
        self.handle_data(f"&#{name};")


def stdlib_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts))
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


def load(path: Path) -> list[tuple[int, str]]:
    with path.open(encoding="utf-8") as f:
        return [(r["id"], r["content"]) for r in map(json.loads, f) if r.get("content")]


def measure(fn, docs: list[tuple[int, str]]) -> dict:
    """One warm-up pass (its output is kept for the checks), then REPS timed passes over every article."""
    wanted = {aid for _, aid, _ in CHECKS}
    outputs = {str(aid): fn(markup) for aid, markup in docs}
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _, markup in docs:
            fn(markup)
        times.append(time.perf_counter() - t0)
    return {
        "median_s": statistics.median(times),
        "times": times,
        "out_chars": sum(map(len, outputs.values())),
        "outputs": {k: v for k, v in outputs.items() if int(k) in wanted},
    }


def unstructured_worker(data: Path) -> dict:
    """Runs inside the unstructured venv: the course's partition_html + cleaners, and cleaners on a tag stripper."""
    from importlib.metadata import version

    import unstructured.nlp.tokenize as tokenize
    from unstructured.cleaners.core import (
        clean,
        clean_non_ascii_chars,
        group_broken_paragraphs,
        replace_unicode_quotes,
    )
    from unstructured.partition.html import partition_html

    docs = load(data)

    def course(markup: str) -> str:  # what the reference course's feature pipeline did with each article
        text = " ".join(str(el) for el in partition_html(text=markup))
        return clean_non_ascii_chars(replace_unicode_quotes(clean(text)))

    def cleaners(markup: str) -> str:
        text = clean_non_ascii_chars(replace_unicode_quotes(group_broken_paragraphs(stdlib_text(markup))))
        paragraphs = (clean(p, extra_whitespace=True, bullets=True) for p in text.split("\n\n"))
        return "\n\n".join(p for p in paragraphs if p)

    attempts = []
    for env in OFFLINE_ENVS:
        os.environ.update(env)
        try:
            partition_html(text="<p>Shares rose 3% on Monday. The company raised its outlook.</p>")
            attempts.append({"env": env, "error": None})
            break
        except Exception as exc:  # any failure is the result being reported
            attempts.append({"env": env, "error": f"{type(exc).__name__}: {exc}"})
        finally:
            for key in env:
                del os.environ[key]
    stubbed = attempts[-1]["error"] is not None
    if stubbed:  # time the rest of partition_html: a blank spaCy pipeline stands in for en_core_web_sm
        import spacy

        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        tokenize._get_nlp = lambda: nlp
    return {
        "version": version("unstructured"),
        "partition_attempts": attempts,
        "course": {**measure(course, docs), "stubbed": stubbed},
        "cleaners": measure(cleaners, docs),
    }


def du_kb(*paths: Path) -> int:
    out = subprocess.run(["du", "-skc", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[-1].split()[0])


def import_s(python: str, stmt: str) -> float:
    """Median over 5 fresh interpreters of the time to run `stmt` (imports) after start-up."""
    code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    env = {**os.environ, **QUIET}
    runs = [
        float(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, env=env).stdout)
        for _ in range(5)
    ]
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--unstructured-python", default="/tmp/unst/bin/python")
    ap.add_argument("--worker", choices=["unstructured"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(unstructured_worker(args.data)))
        return

    upy = args.unstructured_python
    if not Path(upy).is_file():
        sys.exit(f"no unstructured venv at {upy}: see the install line at the top of this file")

    from finassist.feature.clean import clean_html

    docs = load(args.data)
    mb = sum(len(m.encode()) for _, m in docs) / 1e6
    site = Path(sysconfig.get_paths()["purelib"])
    ours_deps = [p for pat in ("selectolax*", "ftfy*", "wcwidth*") for p in site.glob(pat)]
    rows = {
        "finassist clean_html (selectolax + ftfy)": {
            **measure(clean_html, docs),
            "size_kb": du_kb(*ours_deps),
            "import_s": import_s(sys.executable, "import ftfy; from selectolax.lexbor import LexborHTMLParser"),
        },
        "stdlib HTMLParser + html.unescape": {
            **measure(stdlib_text, docs),
            "size_kb": 0,
            "import_s": import_s(sys.executable, "import html.parser"),
        },
    }

    cmd = [upy, __file__, "--worker", "unstructured", "--data", str(args.data)]
    worker = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **QUIET})
    if worker.returncode:
        sys.exit(f"unstructured worker failed:\n{worker.stderr}")
    unst = json.loads(worker.stdout.splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:  # a bare venv of the same Python: what `unstructured` adds on top
        subprocess.run([upy, "-m", "venv", tmp], check=True)
        unst_kb = du_kb(Path(upy).parent.parent) - du_kb(Path(tmp))
    unst_import = import_s(upy, "import unstructured.cleaners.core, unstructured.partition.html")
    stub = " (spaCy stubbed†)" if unst["course"]["stubbed"] else ""
    rows[f"unstructured {unst['version']} partition_html + cleaners (course){stub}"] = {
        **unst["course"],
        "size_kb": unst_kb,
        "import_s": unst_import,
    }
    rows[f"stdlib tag stripper + unstructured {unst['version']} cleaners"] = {
        **unst["cleaners"],
        "size_kb": unst_kb,
        "import_s": unst_import,
    }

    print(f"{len(docs)} articles with HTML, {mb:.2f} MB; median of {REPS} passes\n")
    print("| option | articles/s | MB/s | output chars | extra deps installed | import |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        size = f"{r['size_kb'] / 1024:.1f} MB" if r["size_kb"] else "0 (stdlib)"
        print(
            f"| {name} | {len(docs) / r['median_s']:,.0f} | {mb / r['median_s']:.2f} | {r['out_chars']:,} "
            f"| {size} | {r['import_s'] * 1000:.0f} ms |"
        )
    print("\n| check (article id) | " + " | ".join(f"({i + 1})" for i in range(len(rows))) + " |")
    print("|---|" + ":---:|" * len(rows))
    for check, aid, ok in CHECKS:
        marks = ["pass" if ok(r["outputs"][str(aid)]) else "**fail**" for r in rows.values()]
        print(f"| {check} ({aid}) | " + " | ".join(marks) + " |")
    print("\n" + "; ".join(f"({i + 1}) {name}" for i, name in enumerate(rows)))
    print("\npartition_html offline, as is and with each environment variable set:")
    for attempt in unst["partition_attempts"]:
        print(f"- `{attempt['env'] or 'no extra env'}` → {attempt['error'] or 'ok'}")


if __name__ == "__main__":
    main()
