"""DeepSpeed's own model-state estimators, recorded for the core's ZeRO model (merged into
tests/core/golden/recipes_measured.json under "deepspeed").

    /work/venvs/recipes/bin/python validation/recipes/deepspeed_estimates.py

``estimate_zero2_model_states_mem_needs`` / ``estimate_zero3_model_states_mem_needs`` (deepspeed 0.19.8,
runtime/zero/stage_1_and_2.py and stage3.py) are what ``..._all_live(model)`` calls with the model's parameter
count and largest module; they run on the CPU. Recorded with ``additional_buffer_factor=1.0`` (DeepSpeed's
fudge factor for host memory) for total parameter counts of real presets.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import sys
from pathlib import Path

from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from calculator.core import architecture_from_config  # noqa: E402

GOLDEN = ROOT / "tests" / "core" / "golden" / "recipes_measured.json"
PRESETS = {p["slug"]: p["config"] for p in json.loads((ROOT / "calculator/data/presets.json").read_text())}


def main() -> None:
    rows = []
    for slug in ("llama-3.2-1b", "llama-3.1-8b", "qwen2.5-7b"):
        arch = architecture_from_config(PRESETS[slug])
        total = arch.base_params
        largest = max(m.numel for _key, m in arch.modules())
        for gpus in (1, 2, 4, 8):
            for offload in (False, True):
                cpu, gpu = estimate_zero2_model_states_mem_needs(
                    total, num_gpus_per_node=gpus, cpu_offload=offload, additional_buffer_factor=1.0
                )
                rows.append(
                    {
                        "preset": slug,
                        "stage": 2,
                        "gpus": gpus,
                        "optimizer_offload": offload,
                        "param_offload": False,
                        "gpu_bytes": gpu,
                        "cpu_bytes": cpu,
                    }
                )
                for params in (False, True) if offload else (False,):
                    cpu, gpu, layer = estimate_zero3_model_states_mem_needs(
                        total,
                        largest,
                        num_gpus_per_node=gpus,
                        cpu_offload=offload,
                        cpu_offload_params=params,
                        additional_buffer_factor=1.0,
                    )
                    rows.append(
                        {
                            "preset": slug,
                            "stage": 3,
                            "gpus": gpus,
                            "optimizer_offload": offload,
                            "param_offload": params,
                            "gpu_bytes": gpu,
                            "cpu_bytes": cpu,
                            "largest_layer_bytes": layer,
                        }
                    )
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    golden["deepspeed"] = {"version": md.version("deepspeed"), "additional_buffer_factor": 1.0, "estimates": rows}
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(len(rows), "estimates")


if __name__ == "__main__":
    main()
