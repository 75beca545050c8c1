"""Regenerate sentences.txt from Debian's fortunes-min (apt-get install fortunes-min).

    python bench/accuracy/make_sentences.py > bench/accuracy/sentences.txt

Sentences of 4-14 words from the fortune files ``fortunes``, ``literature`` and
``riddles``: lower-cased, hyphens as spaces, other punctuation removed; sentences with
digits or symbols, or with single letters other than "a"/"i", are left out; duplicates
once. The result is shipped, so the benchmark does not need the package.
"""

import re
import sys

HEADER = (
    "# 758 sentences from Debian's fortunes-min 1.99.1 (files fortunes, literature, "
    "riddles), BSD licence: see SENTENCES-LICENSE.\n"
    "# Made by bench/accuracy/make_sentences.py: sentences of 4-14 words, lower-cased, "
    "punctuation removed, no digits/symbols.\n"
)


def sentences(root: str = "/usr/share/games/fortunes"):
    seen = set()
    for name in ("fortunes", "literature", "riddles"):
        with open(f"{root}/{name}", encoding="utf-8", errors="replace") as f:
            entries = f.read().split("\n%\n")
        for entry in entries:
            body = " ".join(
                line.strip()
                for line in entry.splitlines()
                if not line.strip().startswith("--") and not line.startswith("\t\t")
            )
            for s in re.split(r"(?<=[.!?])\s+", body):
                if re.search(r"[0-9$%&@#*/=+<>_\[\]{}|~^]", s):
                    continue
                words = re.sub(r"[^a-z' ]", " ", s.lower().replace("-", " ")).split()
                words = [w for w in (w.strip("'") for w in words) if w]
                if not 4 <= len(words) <= 14:
                    continue
                if any(len(w) == 1 and w not in ("a", "i") for w in words):
                    continue
                text = " ".join(words)
                if text not in seen:
                    seen.add(text)
                    yield text


if __name__ == "__main__":
    sys.stdout.write(HEADER + "".join(s + "\n" for s in sentences()))
