"""Check that every preset's config instantiates to its published parameter count.

Run with the validation venv (see validation/README.md):

    validation/.venv/bin/python validation/check_presets.py            # presets + extra configs
    validation/.venv/bin/python validation/check_presets.py gpt2 ...   # only these slugs

For each entry of calculator/data/presets.json and validation/configs/*.json, builds the model with
transformers on the meta device (no weights are allocated) and compares
sum(p.numel() for p in model.parameters()) -- tied weights counted once -- with `published_params`.
Exits 1 on any mismatch, missing field or failure to instantiate.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "calculator" / "data" / "presets.json"
EXTRA_DIR = ROOT / "validation" / "configs"
REQUIRED_FIELDS = ("slug", "name", "family", "published_params", "source_url", "notes", "config")


def load_entries() -> list[tuple[str, dict]]:
    entries = [("preset", e) for e in json.loads(PRESETS.read_text())]
    for path in sorted(EXTRA_DIR.glob("*.json")):
        entry = json.loads(path.read_text())
        if entry.get("slug") != path.stem:
            raise SystemExit(f"{path}: slug {entry.get('slug')!r} does not match the file name")
        entries.append(("extra", entry))
    return entries


def instantiated_params(config: dict) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    only = set(argv)
    entries = load_entries()
    slugs = [e["slug"] for _, e in entries]
    failures = 0
    if len(slugs) != len(set(slugs)):
        print("duplicate slugs:", sorted({s for s in slugs if slugs.count(s) > 1}))
        failures += 1
    for source, entry in entries:
        if only and entry.get("slug") not in only:
            continue
        missing = [f for f in REQUIRED_FIELDS if f not in entry]
        if missing:
            print(f"FAIL  {entry.get('slug')}: missing fields {missing}")
            failures += 1
            continue
        try:
            n = instantiated_params(entry["config"])
        except Exception as exc:  # report and go on
            print(f"FAIL  {entry['slug']}: cannot instantiate: {type(exc).__name__}: {exc}")
            failures += 1
            continue
        ok = n == entry["published_params"]
        failures += not ok
        print(
            f"{'ok  ' if ok else 'FAIL'}  {source:6s} {entry['slug']:20s} instantiated {n:>16,d}"
            f"  published {entry['published_params']:>16,d}"
        )
    print(f"{'FAILED' if failures else 'all ok'}: {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
