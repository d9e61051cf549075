"""Summarise and self-check the 2026 golden files (issue 7); no torch needed.

Run:  python3 validation/golden_summary.py [--verbose]

Reads tests/core/golden/{inventories,peft_params_2026,memory_measured_2026}.json and prints, per model family,
the configs, the PEFT cases (and how many PEFT refused), the measured memory cases (and how many failed to
train), then checks what must hold between the files:
  * every config of peft_params_2026.json has the same base_params and auto_class in inventories.json;
  * every PEFT case's breakdown adds up to its trainable count, its by_component too, and all >= base;
  * every small config has a full module list whose parameters add up to base_params (tied counted once);
  * every measured case's config file exists and its trainable_params equals PEFT's count for the same LoRA.
Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from math import prod
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "core" / "golden"


def load(name: str) -> dict:
    path = GOLDEN / name
    return json.loads(path.read_text()) if path.exists() else {}


def family_of(model_type: str) -> str:
    groups = {
        "dense": {
            "gemma3_text",
            "olmo2",
            "granite",
            "smollm3",
            "cohere2",
            "glm4",
            "phi",
            "starcoder2",
            "falcon",
            "lfm2",
        },
        "multimodal": {"gemma3", "gemma4", "gemma4_text", "mistral3", "qwen2_5_vl", "mllama", "llama4"},
        "hybrid": {"qwen3_5", "qwen3_5_moe", "qwen3_next"},
        "moe": {"qwen3_moe", "qwen2_moe", "gpt_oss", "glm4_moe", "deepseek_v2", "deepseek_v3"},
    }
    return next((g for g, types in groups.items() if model_type in types), "other (catalog)")


def check_inventories(inv: dict, problems: list[str]) -> None:
    for name, e in inv.get("configs", {}).items():
        if "modules" not in e:
            continue
        tied = {n for group in e["tied"] for n in group[1:]}
        total = 0
        for m in e["modules"]:
            for pname, shape in m.get("params", {}).items():
                full = f"{m['path']}.{pname}" if m["path"] else pname
                if full not in tied:
                    total += prod(shape)
        if total != e["base_params"]:
            problems.append(f"inventory {name}: module parameters add up to {total}, base_params {e['base_params']}")


def check_peft(peft: dict, inv: dict, problems: list[str]) -> None:
    configs = inv.get("configs", {})
    for slug, arch in peft.get("architectures", {}).items():
        e = configs.get(slug)
        if e is None:
            problems.append(f"peft {slug}: not in inventories.json")
        elif (e["base_params"], e["auto_class"]) != (arch["base_params"], arch["auto_class"]):
            problems.append(f"peft {slug}: base/auto class differ from inventories.json")
    for c in peft.get("cases", []):
        if "error" in c:
            continue
        where = f"peft {c['arch']}/{c['id']}"
        if sum(c["breakdown"].values()) != c["trainable"]:
            problems.append(f"{where}: breakdown does not add up")
        if sum(c["by_component"].values()) != c["trainable"]:
            problems.append(f"{where}: by_component does not add up")
        if c["all"] < peft["architectures"][c["arch"]]["base_params"]:
            problems.append(f"{where}: all < base_params")


def check_memory(mem: dict, peft: dict, problems: list[str]) -> None:
    peft_by_key = {}
    for c in peft.get("cases", []):
        if "error" not in c:
            peft_by_key[(c["arch"], json.dumps(c["lora"], sort_keys=True))] = c["trainable"]
    for c in mem.get("cases", []):
        if not (ROOT / c["config_file"]).exists():
            problems.append(f"memory {c['id']}: missing {c['config_file']}")
        if "error" in c:
            continue
        if c["gradients_bytes"] > c["trainable_bytes"]:
            problems.append(f"memory {c['id']}: more gradient than trainable bytes")
        key = (c["family"], json.dumps(c["lora_kwargs"], sort_keys=True))
        if key in peft_by_key and peft_by_key[key] != c["trainable_params"]:
            problems.append(f"memory {c['id']}: trainable {c['trainable_params']} != PEFT golden {peft_by_key[key]}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--verbose", action="store_true", help="list every refused / failed case")
    args = ap.parse_args(argv)
    inv, peft, mem = load("inventories.json"), load("peft_params_2026.json"), load("memory_measured_2026.json")
    rows: dict[str, dict[str, dict]] = defaultdict(dict)
    for name, e in inv.get("configs", {}).items():
        mt = e["model_type"]
        rows[family_of(mt)].setdefault(mt, {"configs": [], "peft": 0, "peft_err": 0, "mem": 0, "mem_err": 0})
        rows[family_of(mt)][mt]["configs"].append(f"{name}{'' if e['source'] == 'small' else ' (real)'}")
    arch_type = {slug: a["config"]["model_type"] for slug, a in peft.get("architectures", {}).items()}
    errors: list[str] = []
    for c in peft.get("cases", []):
        r = rows[family_of(arch_type[c["arch"]])][arch_type[c["arch"]]]
        r["peft"] += 1
        if "error" in c:
            r["peft_err"] += 1
            errors.append(f"  peft   {c['arch']}/{c['id']}: {c['error'].splitlines()[0][:140]}")
    small_type = {n: e["model_type"] for n, e in inv.get("configs", {}).items()}
    for c in mem.get("cases", []):
        mt = small_type.get(c["family"], "?")
        r = rows[family_of(mt)].setdefault(mt, {"configs": [], "peft": 0, "peft_err": 0, "mem": 0, "mem_err": 0})
        r["mem"] += 1
        if "error" in c:
            r["mem_err"] += 1
            errors.append(f"  memory {c['id']}: {c['error'][:140]}")
    print(f"{'family':<16} {'model_type':<14} {'peft cases (refused)':>21} {'memory cases (failed)':>22}  configs")
    totals = [0, 0, 0, 0]
    for group in sorted(rows):
        for mt in sorted(rows[group]):
            r = rows[group][mt]
            totals = [totals[0] + r["peft"], totals[1] + r["peft_err"], totals[2] + r["mem"], totals[3] + r["mem_err"]]
            print(
                f"{group:<16} {mt:<14} {r['peft']:>14} ({r['peft_err']:>4}) {r['mem']:>15} ({r['mem_err']:>4})  "
                + ", ".join(r["configs"])
            )
    print(
        f"total: {len(inv.get('configs', {}))} configs in inventories.json, {totals[0]} PEFT cases ({totals[1]} refused), "
        f"{totals[2]} memory cases ({totals[3]} failed), {len(mem.get('quantized_models', {}))} quantized bases listed"
    )
    if args.verbose:
        print("refused / failed:")
        print("\n".join(errors))
    problems: list[str] = []
    check_inventories(inv, problems)
    check_peft(peft, inv, problems)
    check_memory(mem, peft, problems)
    for p in problems:
        print("PROBLEM", p)
    print("self-check:", "ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
