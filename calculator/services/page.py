"""Everything the calculator page's results panel shows for one configuration and one chosen GPU."""

from __future__ import annotations

from dataclasses import dataclass

from calculator.core import Estimate, Gpu, GpuFit, InputError
from calculator.core.advice import Advice
from calculator.core.frameworks import FrameworkDefault
from calculator.core.gpus import FITS, fits, smallest_fitting
from calculator.core.insights import (
    AdapterFileSizes,
    ComparisonNotes,
    ExpertQuantization,
    adapter_file_sizes,
    comparison_notes,
    expert_quantization,
    loss_baseline,
    oversized_ranks,
    parameter_reduction,
)
from calculator.core.lora import AdaptedModule
from calculator.core.serving import ServingEstimate, serving_estimate
from calculator.schemas import CUSTOM_GPU, EstimateRequest, ModelChoice, PageOptions
from calculator.services.catalog import find_preset, gpus
from calculator.services.planning import PlannedEstimate, SweepRow, custom_gpu, plan_estimate, sweep_rows
from calculator.services.recipes import RecipeExports, hub_id, recipe_exports

HOST_RAM = "Host RAM"  # the "card" the host memory is checked against (no margin: the OS pages)


@dataclass(frozen=True, slots=True)
class CalculatorResults:
    """Everything the calculator's results panel shows, for one configuration and one chosen GPU."""

    estimate: Estimate
    planned: PlannedEstimate  # verdicts with the safety margin, time, which GPU to rent, advice
    gpu: Gpu  # the card the verdict, advice, time and serving panel are for (a catalog card or the custom one)
    fit: GpuFit  # the peak on that card, with its verdict
    smallest_fit: GpuFit | None  # the smallest card the peak fits on with the margin
    fitting: tuple[GpuFit, ...]  # every card it fits on with the margin
    sweep: tuple[SweepRow, ...]  # peak, time and cost against `sweep_variable`
    sweep_variable: str
    serving: ServingEstimate
    serving_fit: GpuFit  # base + adapters, unmerged, on the chosen card
    merged_fit: GpuFit
    scenario_fits: tuple[GpuFit, ...]  # each comparison column's peak on the chosen card
    notes: ComparisonNotes
    parameter_reduction: float
    oversized_ranks: tuple[AdaptedModule, ...]  # adapted modules whose r exceeds min(in, out)
    adapter_files: AdapterFileSizes
    set_by_framework: tuple[FrameworkDefault, ...]  # the training fields the framework filled
    host_fit: GpuFit | None  # host memory against the host RAM the user has (None: nothing offloaded)
    experts: ExpertQuantization | None  # a quantized MoE base whose experts stay 16-bit, and the alternative
    experts_fit: GpuFit | None  # that alternative's peak on the chosen card
    loss_baseline: Estimate | None  # the same with transformers' full-logits loss (what a chunked loss saves)
    exports: RecipeExports

    @property
    def advice(self) -> Advice:
        return self.planned.plan.advice


FILE_SIZE_RANKS = (8, 16, 32, 64)
FILE_SIZE_DTYPES = ("fp32", "bf16")


def calculator_results(
    *,
    request: EstimateRequest,
    options: PageOptions,
    target_sets: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> CalculatorResults:
    """The estimate and its plan on the chosen card, with the serving, recipe and what-if panels;
    ``target_sets`` (label, module names) are the columns of the adapter-file table. Raises `InputError`
    (``training.gpu`` for a card the catalog does not have)."""
    custom = custom_gpu(options)
    if request.training.gpu == CUSTOM_GPU and custom is None:
        raise InputError.single("page.custom_gpu_memory_gib", "Enter the custom GPU's memory (GiB).")
    planned = plan_estimate(request=request, custom=custom, example_dataset=True)
    result, plan = planned.estimate, planned.plan
    gpu, margin = plan.gpu, planned.settings.safety_margin
    arch, lora, training = result.architecture, result.lora_settings, result.training
    serving = serving_estimate(arch, lora, training, options.adapters, (gpu,))
    fit = next(f for f in plan.fits if f.gpu == gpu.name)
    experts = expert_quantization(result, gpus())
    fitting = tuple(f for f in plan.fits if f.verdict == FITS)
    return CalculatorResults(
        estimate=result,
        planned=planned,
        gpu=gpu,
        fit=fit,
        smallest_fit=smallest_fitting(fitting),
        fitting=fitting,
        sweep=sweep_rows(planned=planned, variable=options.sweep),
        sweep_variable=options.sweep,
        serving=serving,
        serving_fit=serving.fits[0],
        merged_fit=serving.merged_fits[0],
        scenario_fits=tuple(fits(s.memory.total_bytes, (gpu,), margin)[0] for s in result.comparison),
        notes=comparison_notes(result),
        parameter_reduction=parameter_reduction(result.count),
        oversized_ranks=oversized_ranks(result.count),
        adapter_files=adapter_file_sizes(
            arch, lora, training.base_dtype, FILE_SIZE_RANKS, target_sets, FILE_SIZE_DTYPES
        ),
        set_by_framework=request.training.fill().set_by_framework,
        host_fit=_host_fit(result, options),
        experts=experts,
        experts_fit=fits(experts.quantized.memory.total_bytes, (gpu,), margin)[0] if experts else None,
        loss_baseline=loss_baseline(result, gpus()),
        exports=recipe_exports(result=result, model_id=model_id(choice=request.model)),
    )


def _host_fit(result: Estimate, options: PageOptions) -> GpuFit | None:
    if not result.memory.host_bytes:
        return None
    (fit,) = fits(result.memory.host_bytes, (Gpu(HOST_RAM, options.host_ram_bytes),), safety_margin=0.0)
    return fit


def model_id(*, choice: ModelChoice) -> str:
    """The Hugging Face repository a recipe loads: a preset's Hub page, a pasted config's ``_name_or_path``;
    "" when unknown (custom dimensions)."""
    if choice.preset is not None:
        entry = find_preset(choice.preset)
        return (entry.hf_repo or hub_id(entry.source_url)) if entry is not None else ""
    name = (choice.hf_config or {}).get("_name_or_path")
    return name if isinstance(name, str) and name.count("/") == 1 else ""
