"""The roofline figure of chapter 10. The arithmetic (attainable FLOP/s) lives in ``bench``;
this module only draws it."""

from __future__ import annotations

from typing import Any, Sequence



def plot_roofline(peak: dict[str, Any], sweep: Sequence[dict[str, Any]], config: Any, device_label: str, ax: Any = None) -> Any:
    """A grouped-convolution sweep on a roofline (Williams et al., 2009).

    ``peak`` from ``bench.measure_peak``, ``sweep`` from ``bench.grouped_conv_sweep``, ``config``
    the ``bench.BenchConfig`` that made them. x: arithmetic intensity (FLOP per byte moved),
    y: achieved FLOP/s, both log-scaled. The roof is the measured peak (matrix product or 1x1 conv), its slope the
    measured bandwidth (copy); each point is one groups value, one marker per memory format.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    from ..bench import attainable_flops_per_s

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


# ----------------------------------------------------------------------- block diagrams (ch. 1-2)
# Drawn in data coordinates on axis-free Axes, data flowing from the input at the top to the
# output at the bottom, as in the papers' figures. Layers are labelled in the ResNeXt paper's
# notation: (input channels, filter size, output channels).
