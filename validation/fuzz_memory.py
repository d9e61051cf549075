"""Memory fuzz: random training settings on the small 2026 configs, measured one step on the CPU vs the core.

    validation/.venv/bin/python validation/fuzz_memory.py <cases> <seed> [family,family...]

Random batch (1-3), sequence (17-130, odd lengths included), rank, targets, dtype, kernel and checkpointing, each
trained one step by measure_memory_2026.run (the golden files' instrument); prints the activation error against
the core and whether trainable counts and bytes are exact, flagging what falls outside the golden tests' bounds.
"""

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "validation"))
sys.path.insert(0, str(ROOT / "tests/core"))
import measure_memory_2026 as mme  # noqa: E402
import test_memory_golden_2026 as t  # noqa: E402

from calculator.core import TrainingSettings  # noqa: E402
from calculator.core.activations import estimate_activations  # noqa: E402
from calculator.core.memory import static_memory  # noqa: E402

N = int(sys.argv[1])
SEED = int(sys.argv[2])
rng = random.Random(SEED)
names = [
    n for n in mme.DENSE + mme.MULTIMODAL + mme.HYBRID + mme.MOE if len(sys.argv) < 4 or n in sys.argv[3].split(",")
]
worst = []
t0 = time.time()
for k in range(N):
    name = rng.choice(names)
    kernels = mme.kernels_supported(name)
    targets = rng.choice(
        ["qv", "all", "experts"] if name in set(mme.MOE) | {"qwen3_5_moe", "qwen3_next"} else ["qv", "all"]
    )
    case = dict(mme.BASE) | {
        "family": name,
        "extended": True,
        "attn": rng.choice(kernels),
        "targets": targets,
        "batch": rng.choice([1, 2, 3]),
        "seq": rng.choice([17, 40, 64, 97, 130]),
        "r": rng.choice([1, 4, 8, 24]),
        "dtype": rng.choice(["bf16", "fp32"]),
        "gc": rng.random() < 0.4,
    }
    case["id"] = mme.case_id(case)
    r = mme.run(case, {})
    if "error" in r:
        print("ERR", case["id"], r["error"][:150])
        continue
    if not t.judged(r):
        continue
    arch, count, training = t.setup(r)
    acts = estimate_activations(arch, count, training)
    total = acts.layers_bytes + acts.outside_bytes + acts.logits_bytes
    err = total / r["activations_gpu_adjusted"] - 1
    tol = t.WIDER.get(name, t.TOLERANCE)
    mem = static_memory(arch, count, TrainingSettings(base_dtype=training.base_dtype))
    static_ok = count.trainable_params == r["trainable_params"] and mem.adapter_weights_bytes == r["trainable_bytes"]
    flag = "" if abs(err) <= tol and static_ok else "  <-- OUT"
    print(f"{case['id']:70s} act err {err * 100:+.3f}% static {'ok' if static_ok else 'DIFF'}{flag}", flush=True)
    worst.append((abs(err), case["id"]))
print("worst", sorted(worst)[-3:], f"{time.time() - t0:.0f}s")
