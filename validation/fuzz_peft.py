"""Differential fuzz: random (mutated) configs x random LoraConfigs, PEFT 0.21 vs the core.

    validation/.venv/bin/python validation/fuzz_peft.py [cases_per_config] [seed] [name-regex]
    WIDE=1 ...            # also regex rank patterns and excludes, layers_pattern, trainable tokens, weight tying
    DIR=validation/configs/catalog ...   # the real-size configs instead of the small ones

Each config of validation/configs/small/ is mutated (layer count, tied or untied head) and given random LoraConfigs
(ranks, name lists, regexes, "all-linear", PEFT's defaults, target_parameters, layers_to_transform, rank/alpha
patterns, bias modes, DoRA, lora_bias, modules_to_save, excludes); PEFT's get_nb_trainable_parameters() or its
refusal is compared with count_lora. Prints every disagreement and a summary; exits 0 either way (a research tool:
what it finds becomes a test in tests/core/test_peft_fuzz_findings.py).
"""

import copy
import json
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "validation"))
import peft_golden  # noqa: E402
from model_build import build_meta  # noqa: E402

from calculator.core import InputError, architecture_from_config, count_lora  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "core"))
from test_peft_golden_2026 import settings  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 0
PAT = sys.argv[3] if len(sys.argv) > 3 else "."
rng = random.Random(SEED)


def mutate(cfg):
    cfg = copy.deepcopy(cfg)

    def walk(c):
        n = c.get("num_hidden_layers")
        if isinstance(n, int) and n > 0:
            new = rng.choice([n, n, max(1, n - 1), n + 1, n + 2])
            for key in ("layer_types", "layers_block_type", "no_rope_layers"):
                if isinstance(c.get(key), list) and len(c[key]) == n:
                    c[key] = [c[key][i % n] for i in range(new)]
            if isinstance(c.get("mlp_only_layers"), list):
                c["mlp_only_layers"] = [i for i in c["mlp_only_layers"] if i < new]
            c["num_hidden_layers"] = new
        if "tie_word_embeddings" in c and rng.random() < 0.3:
            c["tie_word_embeddings"] = not c["tie_word_embeddings"]
        for key in ("text_config",):
            if isinstance(c.get(key), dict):
                walk(c[key])

    walk(cfg)
    return cfg


def module_names(model):
    import torch

    linear, other = set(), set()
    for name, m in model.named_modules():
        if not name:
            continue
        last = name.split(".")[-1]
        if isinstance(m, torch.nn.Linear) or type(m).__name__ in ("Conv1D",):
            linear.add(last)
        elif not last.isdigit():
            other.add(last)
    params3d = set()
    for name, p in model.named_parameters():
        if p.dim() == 3:
            params3d.add(name.split(".")[-1] if False else ".".join(name.split(".")[-2:]))
    return sorted(linear), sorted(other), sorted(params3d)


def random_lora(linear, other, params3d, n_layers):
    kw = {"r": rng.choice([1, 2, 3, 8, 16, 33]), "lora_alpha": rng.choice([1, 8, 16, 32, 7])}
    mode = rng.random()
    if mode < 0.45 and linear:
        kw["target_modules"] = rng.sample(linear, rng.randint(1, min(4, len(linear))))
    elif mode < 0.6:
        kw["target_modules"] = "all-linear"
    elif mode < 0.75 and linear:
        names = rng.sample(linear, rng.randint(1, min(3, len(linear))))
        kw["target_modules"] = (
            rf".*\.({'|'.join(names)})"
            if rng.random() < 0.5
            else rf".*layers\.[0-{max(0, n_layers - 1) % 10}]\..*({'|'.join(names)})"
        )
    elif mode < 0.85 and params3d:
        kw["target_modules"] = rng.sample(linear, 1) if linear and rng.random() < 0.5 else []
        kw["target_parameters"] = rng.sample(params3d, rng.randint(1, min(2, len(params3d))))
    else:
        kw["target_modules"] = None
    if rng.random() < 0.2 and n_layers > 1:
        kw["layers_to_transform"] = sorted(rng.sample(range(n_layers + 1), rng.randint(1, n_layers)))
    if rng.random() < 0.2 and linear:
        kw["rank_pattern"] = {rng.choice(linear): rng.choice([2, 5, 12])}
    if rng.random() < 0.15 and linear:
        kw["alpha_pattern"] = {rng.choice(linear): rng.choice([3, 64])}
    if rng.random() < 0.2:
        kw["bias"] = rng.choice(["all", "lora_only"])
    if rng.random() < 0.15:
        kw["use_dora"] = True
    if rng.random() < 0.1:
        kw["lora_bias"] = True
    if rng.random() < 0.15 and other:
        kw["modules_to_save"] = rng.sample([*other, "lm_head"], 1)
    if rng.random() < 0.15 and linear:
        kw["exclude_modules"] = rng.sample(linear, 1)
    if rng.random() < 0.1:
        kw["use_rslora"] = True
    if os.environ.get("WIDE"):
        if rng.random() < 0.15 and linear:
            kw["rank_pattern"] = {rf"layers\.{rng.randint(0, max(0, n_layers - 1))}\.[a-z_]+\.{rng.choice(linear)}": 4}
        if rng.random() < 0.15 and linear:
            kw["exclude_modules"] = rf".*\.{rng.choice(linear)}"
        if rng.random() < 0.1 and n_layers > 1:
            kw["layers_to_transform"] = rng.randint(0, n_layers - 1)
            kw["layers_pattern"] = rng.choice(["layers", "blocks", ["layers", "blocks"], "h"])
        if rng.random() < 0.1:
            kw["trainable_token_indices"] = rng.choice([[0, 1], [5]])
            if rng.random() < 0.5:
                kw["ensure_weight_tying"] = True
        if rng.random() < 0.1:
            kw["modules_to_save"] = rng.choice([["lm_head"], ["embed_tokens"], ["lm_head", "embed_tokens"]])
            if rng.random() < 0.5:
                kw["ensure_weight_tying"] = True
        if rng.random() < 0.1:
            kw["lora_dropout"] = 0.1
    return kw


files = sorted(
    p for p in (ROOT / os.environ.get("DIR", "validation/configs/small")).glob("*.json") if re.search(PAT, p.stem)
)
stats = {"agree": 0, "both_err": 0, "mismatch": 0}
t0 = time.time()
for path in files:
    base = json.loads(path.read_text())
    for i in range(N):
        cfg = mutate(base)
        try:
            model, _ = build_meta(cfg)
        except Exception:
            continue
        linear, other, p3 = module_names(model)
        text = cfg.get("text_config", cfg)
        kw = random_lora(linear, other, p3, text.get("num_hidden_layers", 2))
        ref = peft_golden.run_case(cfg, {"task_type": "CAUSAL_LM", **kw}, build=lambda c: build_meta(c)[0])
        try:
            arch = architecture_from_config(cfg)
            got = count_lora(arch, settings(kw))
            ours = (got.trainable_params, got.all_params)
            err = None
        except InputError as e:
            ours, err = None, str(e.errors)[:200]
        if "error" in ref:
            if err is not None:
                stats["both_err"] += 1
            else:
                stats["mismatch"] += 1
                print("PEFT ERR / ours ok", path.stem, kw, ref["error"][:200], ours)
        else:
            theirs = (ref["trainable"], ref["all"])
            if ours == theirs:
                stats["agree"] += 1
            else:
                stats["mismatch"] += 1
                print("MISMATCH", path.stem, json.dumps(kw), "peft", theirs, "ours", ours, err)
print(stats, f"{time.time() - t0:.0f}s")
