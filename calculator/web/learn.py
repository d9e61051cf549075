"""The Learn page: how the numbers are computed, with the current configuration's numbers in the
formulas (all from the core), and a short quiz checked on the server."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import markdown
from django.http import QueryDict

from calculator import services
from calculator.web import formatting as fmt
from calculator.web.form import read


def context(query: QueryDict) -> dict[str, Any]:
    """The page for the configuration in ``query`` (general explanations only while it has errors)."""
    reading = read(query)
    ctx: dict[str, Any] = {"nav": "learn", "canonical": reading.canonical, "quiz": quiz_questions()}
    if not reading.ok:
        return ctx
    assert reading.request is not None
    try:
        learned = services.learn(request=reading.request)
    except services.InputError:
        return ctx
    result, x = learned.estimate, learned.numbers
    arch, lora, training, count = result.architecture, result.lora_settings, result.training, result.count
    d = arch.dims
    n: dict[str, Any] = {}
    ctx["n"] = n
    n["name"] = result.name or arch.family
    n["r"] = str(lora.r)
    n["alpha"] = fmt.number(lora.lora_alpha)
    n["scaling"] = f"{x.scaling:.4g}"
    n["rs_scaling"] = f"{x.rslora_scaling:.4g}"
    n["rslora"] = lora.use_rslora
    if x.example is not None:
        m = x.example
        n["mod"] = {
            "name": m.name,
            "in": fmt.count(m.in_features),
            "out": fmt.count(m.out_features),
            "sum": fmt.count(m.in_plus_out),
            "r": str(m.r),
            "per_layer": fmt.count(m.params_per_layer),
            "layers": str(m.layers),
            "total": fmt.count(m.params),
            "full": fmt.count(m.full_matrix_params),
            "ratio": fmt.percent(m.percent_of_matrix),
        }
    n["trainable"] = fmt.count(count.trainable_params)
    n["hidden"] = fmt.count(d.hidden_size)
    n["heads"] = str(d.num_attention_heads)
    n["kv_heads"] = str(d.num_key_value_heads)
    n["head_dim"] = str(d.head_dim)
    n["q_out"] = fmt.count(x.q_out_features)
    n["kv_out"] = fmt.count(x.kv_out_features)
    n["gqa"] = d.num_key_value_heads < d.num_attention_heads
    n["k_lora"] = fmt.count(x.k_lora_params)
    n["q_lora"] = fmt.count(x.q_lora_params)
    full = result.comparison[0].memory
    n["base_params"] = fmt.count(arch.base_params)
    n["full_dtype"] = result.comparison[0].base_dtype
    n["full_weights"] = fmt.gib(full.base_weights_bytes)
    n["full_grads"] = fmt.gib(full.gradients_bytes)
    n["full_optim"] = fmt.gib(full.optimizer_states_bytes)
    n["full_peak"] = fmt.gib(full.total_bytes)
    n["lora_optim"] = fmt.size(result.memory.optimizer_states_bytes)
    n["lora_peak"] = fmt.gib(result.memory.total_bytes)
    n["optimizer"] = training.optimizer
    n["cd"] = x.compute_dtype
    n["bf16_weights"] = fmt.gib(x.float_base_bytes)
    n["nf4_weights"] = fmt.gib(x.nf4_base_bytes)
    n["nf4dq_weights"] = fmt.gib(x.nf4_double_quant_base_bytes)
    n["dq_saving"] = fmt.size(x.nf4_base_bytes - x.nf4_double_quant_base_bytes)
    n["bits_nf4"] = f"{x.nf4_bits_per_weight:.3f}"
    n["bits_dq"] = f"{x.double_quant_bits_per_weight:.3f}"
    n["block"] = str(x.block_size)
    n["nested"] = str(x.nested_block_size)
    n["zoo"] = str(x.zoo_size)
    n["serve_base"] = fmt.gib(x.zoo.base_weights_bytes)
    n["adapter"] = fmt.size(x.zoo.adapter_bytes)
    n["zoo_total"] = fmt.gib(x.zoo.total_bytes)
    n["zoo_copies"] = fmt.gib(x.zoo_as_full_copies_bytes)
    n["extra_flops"] = fmt.percent(100 * x.zoo.extra_flops_fraction)
    n["kv"] = fmt.size(x.kv_cache_bytes)
    n["seq_len"] = fmt.count(training.seq_len)
    n["layers"] = str(d.num_hidden_layers)
    n["kv_elem"] = str(x.kv_element_bytes)
    n["file"] = fmt.size(result.adapter_file_bytes)
    return ctx


QUIZ: tuple[dict[str, Any], ...] = (
    {
        "id": "q1",
        "question": "LoRA with r = 8 on a k_proj of shape 4096 → 1024 adds how many parameters per layer?",
        "options": (
            ("a", "8 \u00d7 4096 \u00d7 1024 = 33,554,432"),
            ("b", "8 \u00d7 (4096 + 1024) = 40,960"),
            ("c", "4096 + 1024"),
        ),
        "answer": "b",
        "why": "A is r \u00d7 in and B is out \u00d7 r, so r · (in + out). "
        "GQA makes k_proj's out small (kv heads \u00d7 head_dim).",
    },
    {
        "id": "q2",
        "question": "Before the first training step, what does the LoRA model output compared with the base model?",
        "options": (
            ("a", "Exactly the same outputs: B starts at zero, so B·A = 0"),
            ("b", "The base output plus small random noise from A"),
            ("c", "The base output scaled by lora_alpha / r"),
        ),
        "answer": "a",
        "why": "A is initialised randomly and B with zeros, so the update B·A is zero until B learns something.",
    },
    {
        "id": "q3",
        "question": "With lora_alpha = 32 and r = 16, what is the scaling with use_rslora=True?",
        "options": (("a", "2"), ("b", "8"), ("c", "0.5")),
        "answer": "b",
        "why": "rsLoRA divides by √r instead of r: 32 / √16 = 8 (plain LoRA would give 32 / 16 = 2).",
    },
    {
        "id": "q4",
        "question": "In QLoRA, which part is stored in 4-bit NF4?",
        "options": (
            ("a", "The LoRA adapters and their optimizer states"),
            ("b", "The activations saved for backward"),
            ("c", "The frozen base model's linear layers"),
        ),
        "answer": "c",
        "why": "Only the frozen linear weights are quantized; adapters, gradients, optimizer states and activations "
        "keep their 16/32-bit dtypes.",
    },
    {
        "id": "q5",
        "question": "Full fine-tuning in fp32 with torch's AdamW keeps how many bytes of optimizer state "
        "per parameter?",
        "options": (("a", "4"), ("b", "8"), ("c", "16")),
        "answer": "b",
        "why": "Two fp32 moments (exp_avg and exp_avg_sq), 4 bytes each: twice the weights, which is why optimizer "
        "state dominates full fine-tuning.",
    },
    {
        "id": "q6",
        "question": "After merging the adapter into the base weights, serving costs…",
        "options": (
            ("a", "The base model's memory and latency: W + scaling·B·A has W's shape"),
            ("b", "An extra matrix multiplication per adapted layer"),
            ("c", "r extra layers"),
        ),
        "answer": "a",
        "why": "Merging folds the low-rank update into W; nothing extra runs. Unmerged adapters cost a little per "
        "token but let one base serve many adapters.",
    },
)


def quiz_questions(answers: QueryDict | None = None) -> dict[str, Any]:
    questions = []
    score = 0
    answered = 0
    for q in QUIZ:
        given = answers.get(q["id"]) if answers is not None else None
        correct = given == q["answer"]
        answered += given is not None
        score += correct
        questions.append(
            {
                "id": q["id"],
                "question": q["question"],
                "options": [
                    {"value": v, "label": label, "checked": v == given, "right": v == q["answer"]}
                    for v, label in q["options"]
                ],
                "given": given,
                "correct": correct,
                "why": q["why"],
            }
        )
    return {
        "questions": questions,
        "checked": answers is not None,
        "score": score,
        "answered": answered,
        "total": len(QUIZ),
    }


def check_quiz(post: QueryDict) -> dict[str, Any]:
    return quiz_questions(post)


ACCURACY_FILE = Path(__file__).resolve().parents[2] / "docs" / "accuracy.md"


@cache
def accuracy_html() -> str:
    """docs/accuracy.md rendered once per process (it only changes with a deploy)."""
    # Column alignment as `align` attributes: the Content-Security-Policy allows no inline style.
    tables = {"tables": {"use_align_attribute": True}}
    return markdown.markdown(ACCURACY_FILE.read_text(), extensions=["tables", "fenced_code"], extension_configs=tables)
