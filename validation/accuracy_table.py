"""Print the measured-vs-estimated activation table for docs/accuracy.md (no torch needed).

.venv/bin/python validation/accuracy_table.py > /tmp/table.md
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.core.test_memory_golden import CASES, estimated  # noqa: E402


def main() -> None:
    rows = []
    for case in CASES:
        acts = estimated(case)
        ours = acts.layers_bytes + acts.outside_bytes + acts.logits_bytes
        measured = case["activations_gpu_adjusted"]
        rows.append((case["id"], measured, ours, ours / measured - 1, case["saved"]["total_cpu"]))
    print("| case | measured (CPU) | measured, CUDA-adjusted | estimated | error |")
    print("|---|---:|---:|---:|---:|")
    for name, measured, ours, error, cpu in rows:
        print(f"| {name} | {cpu:,} | {measured:,} | {ours:,} | {error:+.2%} |")
    worst = max(rows, key=lambda r: abs(r[3]))
    print(f"\nWorst error over {len(rows)} cases: {worst[3]:+.3%} ({worst[0]}).")


if __name__ == "__main__":
    main()
