"""The roofline figures of chapter 10. The arithmetic (attainable FLOP/s, the ridge point,
the spec-sheet ceilings) lives in ``resnext_lessons.measure``; this module only draws it."""

from __future__ import annotations

from typing import Any, Sequence

from ..measure import SPEC_SHEET_GPUS, attainable_flops_per_s, ridge_point


def plot_roofline(peak: dict[str, Any], sweep: Sequence[dict[str, Any]], config: Any, device_label: str, ax: Any = None) -> Any:
    """A grouped-convolution sweep on a roofline (Williams et al., 2009).

    ``peak`` from ``bench.measure_peak``, ``sweep`` from ``bench.grouped_conv_sweep``, ``config``
    the ``bench.BenchConfig`` that made them. x: arithmetic intensity (FLOP per byte moved),
    y: achieved FLOP/s, both log-scaled. The roof is the measured peak (matrix product or 1x1 conv), its slope the
    measured bandwidth (copy); each point is one groups value, one marker per memory format.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    intensities = [r["flops_per_byte"] for r in sweep] + [peak["ridge_flops_per_byte"]]
    lo, hi = min(intensities) / 2, max(intensities) * 2
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(xs, [attainable_flops_per_s(x, peak) for x in xs], "k-", lw=1.5, label="roofline (measured)")
    # Below the roof, at its left end: the measured points sit on or above it further right.
    ax.annotate(f"peak {peak['flops_per_s'] / 1e9:,.0f} GFLOP/s (measured)", (peak["ridge_flops_per_byte"], peak["flops_per_s"]),
                textcoords="offset points", xytext=(4, -12), ha="left", fontsize=8)
    ax.annotate(f"{peak['bandwidth_bytes_per_s'] / 1e9:,.0f} GB/s (copy)", (lo, lo * peak["bandwidth_bytes_per_s"]),
                textcoords="offset points", xytext=(2, 6), fontsize=8)
    for fmt, marker in (("nchw", "o"), ("channels_last", "s")):
        own = [r for r in sweep if r["memory_format"] == fmt]
        points = ax.scatter(
            [r["flops_per_byte"] for r in own], [2 * r["macs_per_s"] for r in own], marker=marker, label=fmt, zorder=3
        )
        if fmt == "nchw":
            for r in own:
                ax.annotate(f"g={r['groups']}", (r["flops_per_byte"], 2 * r["macs_per_s"]),
                            textcoords="offset points", xytext=(4, -10), fontsize=7, color=points.get_facecolor()[0])
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / byte)", ylabel="achieved FLOP/s")
    ax.set_title(
        f"3x3 conv {config.channels}->{config.channels} ch, {config.size}x{config.size}, "
        f"batch {config.sweep_batch}, {config.sweep_dtype}\non {device_label}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure


def reference_roofline_figure(
    layers: Sequence[tuple[str, float]],
    gpus: dict[str, dict[str, Any]] = SPEC_SHEET_GPUS,
    ax: Any = None,
) -> Any:
    """Rooflines of reference GPUs from their datasheets, with layers placed by intensity.

    ``layers``: (label, FLOP per byte) pairs, drawn as vertical lines. ``gpus``: name ->
    ``fp32_flops_per_s``, ``tf32_flops_per_s``, ``bandwidth_bytes_per_s`` (published
    numbers, ``measure.SPEC_SHEET_GPUS``). Each GPU gets two roofs over one slope: strict fp32
    on CUDA cores (solid) and TF32 on tensor cores (dashed); a dot marks each ridge point.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    ridges = [
        ridge_point(spec[key], spec["bandwidth_bytes_per_s"])
        for spec in gpus.values()
        for key in ("fp32_flops_per_s", "tf32_flops_per_s")
    ]
    points = ridges + [intensity for _, intensity in layers]
    lo, hi = min(points) / 4, max(points) * 4
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    for (name, spec), color in zip(gpus.items(), ("C0", "C1", "C2", "C3")):
        for key, style, label in (
            ("fp32_flops_per_s", "-", "fp32"),
            ("tf32_flops_per_s", "--", "TF32"),
        ):
            peak = {
                "flops_per_s": spec[key],
                "bandwidth_bytes_per_s": spec["bandwidth_bytes_per_s"],
            }
            ys = [attainable_flops_per_s(x, peak) for x in xs]
            ax.plot(xs, ys, style, color=color, lw=1.4, label=f"{name}, {label}")
            ridge = ridge_point(spec[key], spec["bandwidth_bytes_per_s"])
            ax.plot([ridge], [spec[key]], "o", color=color, ms=4)
    for label, intensity in layers:
        ax.axvline(intensity, color="0.5", lw=0.8, ls=":")
        ax.annotate(label, (intensity, lo * min(s["bandwidth_bytes_per_s"] for s in gpus.values())),
                    textcoords="offset points", xytext=(3, 4), rotation=90, fontsize=7,
                    color="0.3", va="bottom")
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / byte)",
           ylabel="attainable FLOP/s")
    ax.set_title("Spec-sheet rooflines (datasheet numbers, not measured)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return ax.figure
