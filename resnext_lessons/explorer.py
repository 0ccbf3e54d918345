"""An explorer of cardinality C and bottleneck width d (chapter 4).

Choose C and d for a ResNeXt-50, ``models.ResNeXt([3, 4, 6, 3], C, d)``, and read what it costs:
the width of its grouped 3x3, one conv2-stage block's parameters (the paper's Table 2 count and
the exact count with BatchNorm) and multiply-adds, the whole network's parameters and
multiply-adds, and the block-diagonal pattern of the grouped weight. Every number comes from
``complexity``. Two views show the same numbers:

* ``explorer_html``: HTML with the values for a grid of (C, d) embedded as JSON and a small
  inline script (no external file, no network), so a static page stays interactive;
* ``explorer_widget``: ipywidgets controls that recompute the numbers in a live kernel.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Sequence

import ipywidgets as widgets

from .blocks import EXPANSION, group_conv_width
from .complexity import block_macs, block_params, resnext_macs, resnext_params, template_params, width_for_cardinality

__all__ = [
    "CARDINALITIES",
    "WIDTHS",
    "explorer_point",
    "explorer_data",
    "panel_html",
    "pattern_svg",
    "explorer_html",
    "CardinalityWidthExplorer",
    "explorer_widget",
]

LAYERS = (3, 4, 6, 3)  # ResNeXt-50 and ResNet-50
PLANES = 64  # the conv2 stage: Table 2's block, 256-d in and out, on a 56x56 map
IN_CHANNELS = PLANES * EXPANSION
MAP_SIZE = 56
CARDINALITIES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
WIDTHS: tuple[int, ...] = tuple(range(1, 65))
FIELDS = (
    "cardinality", "d", "group_width", "template_params", "block_params", "block_macs",
    "model_params", "model_macs", "budget_d", "stage_widths",
)
PATTERN_SIZE = 192  # pixels; divisible by every power of two up to 64, so blocks are whole pixels
PATTERN_COLORS = ("#1f77b4", "#ff7f0e")  # alternate, so neighbouring groups stay apart when small


def explorer_point(cardinality: int, d: int) -> dict[str, int | list[int]]:
    """Costs of ResNeXt-50 with cardinality C = ``cardinality`` and bottleneck width ``d``.

    group_width: channels of the conv2 stage's grouped 3x3 (C*d); template_params: that block's
    parameters as the paper's Table 2 counts them, C*(256*d + 9*d*d + d*256); block_params and
    block_macs: the same block exactly, with BN, on a 56x56 map; model_params, model_macs: the
    whole network on a 224x224 image; budget_d: the d that keeps ResNet's block budget at this
    C; stage_widths: the grouped 3x3's width in conv2..conv5.
    """
    layers = list(LAYERS)
    return {
        "cardinality": cardinality,
        "d": d,
        "group_width": group_conv_width(PLANES, cardinality, d),
        "template_params": template_params(cardinality, d, IN_CHANNELS),
        "block_params": block_params(IN_CHANNELS, PLANES, cardinality, d),
        "block_macs": block_macs(IN_CHANNELS, PLANES, cardinality, d, in_size=MAP_SIZE),
        "model_params": resnext_params(layers, cardinality, d),
        "model_macs": resnext_macs(layers, cardinality, d),
        "budget_d": width_for_cardinality(cardinality, IN_CHANNELS),
        "stage_widths": [group_conv_width(PLANES * 2**i, cardinality, d) for i in range(len(layers))],
    }


def _check_grid(cardinality: int, d: int, cardinalities: Sequence[int], widths: Sequence[int]) -> None:
    for name, value, grid in (("cardinality", cardinality, cardinalities), ("d", d, widths)):
        if value not in grid:
            raise ValueError(
                f"{name}={value!r} is not on the explorer's grid {list(grid)}; pick one of those "
                f"or pass a grid that contains it ({'cardinalities' if name == 'cardinality' else 'widths'}=...)."
            )


def explorer_data(
    cardinalities: Sequence[int] = CARDINALITIES, widths: Sequence[int] = WIDTHS
) -> dict[str, object]:
    """Every grid point's ``explorer_point`` as rows of ``fields``, plus ResNet-50's as reference."""
    points = [explorer_point(c, d) for c in cardinalities for d in widths]
    return {
        "fields": list(FIELDS),
        "cardinalities": list(cardinalities),
        "widths": list(widths),
        "reference": explorer_point(1, 64),
        "rows": [[p[f] for f in FIELDS] for p in points],
    }


def pattern_svg(cardinality: int, size: int = PATTERN_SIZE) -> str:
    """An SVG of the grouped 3x3's dense-equivalent weight: C diagonal blocks, zeros elsewhere."""
    step = size / cardinality
    rects = "".join(
        f'<rect x="{g * step:.2f}" y="{g * step:.2f}" width="{step:.2f}" height="{step:.2f}" '
        f'fill="{PATTERN_COLORS[g % 2]}"></rect>'
        for g in range(cardinality)
    )
    return (
        f'<svg width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" '
        f'aria-label="block-diagonal weight with {cardinality} blocks">'
        f'<rect width="{size}" height="{size}" fill="#f4f4f4" stroke="#999999"></rect>{rects}</svg>'
    )


def _pct(value: int, reference: int) -> str:
    # Rounds half up, in arithmetic that JavaScript's doubles repeat exactly (format() rounds
    # half to even, toFixed() half up: they disagree on ties such as 2156.25).
    tenths = math.floor(1000 * value / reference + 0.5)
    return f"{tenths // 10}.{tenths % 10}%"


def panel_html(point: dict[str, int | list[int]], reference: dict[str, int | list[int]]) -> str:
    """The numbers of one ``explorer_point``, as HTML; percentages are of ResNet-50's ``reference``.

    The inline script of ``explorer_html`` renders the same markup (tests compare the two).
    """
    c, d, w = point["cardinality"], point["d"], point["group_width"]
    rows = [
        ("grouped 3×3 in conv2 (C·d)", f"{c} × {d} = {w:,} channels: {c} {'group' if c == 1 else 'groups'} of {w // c:,}"),
        ("block parameters, Table 2 count", f"{point['template_params']:,} "
         f"({_pct(point['template_params'], reference['template_params'])} of ResNet's "
         f"{reference['template_params']:,})"),
        ("block parameters with BN", f"{point['block_params']:,}"),
        (f"block multiply-adds at {MAP_SIZE}×{MAP_SIZE}", f"{point['block_macs']:,}"),
        (f"ResNeXt-50 ({c}×{d}d) parameters", f"{point['model_params']:,} "
         f"({_pct(point['model_params'], reference['model_params'])} of ResNet-50)"),
        (f"ResNeXt-50 ({c}×{d}d) multiply-adds", f"{point['model_macs']:,} "
         f"({_pct(point['model_macs'], reference['model_macs'])} of ResNet-50)"),
        ("grouped 3×3 width, conv2 to conv5", ", ".join(f"{s:,}" for s in point["stage_widths"])),
        ("d that keeps ResNet's block budget", f"{point['budget_d']}"),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    blocks = "1 diagonal block (dense)" if c == 1 else f"{c} diagonal blocks"
    caption = f"Dense-equivalent weight of the grouped 3×3: {blocks}, 1/{c} non-zero"
    return (
        f'<table class="rxl-numbers">{body}</table>'
        f'<figure class="rxl-pattern">{pattern_svg(c)}<figcaption>{caption}</figcaption></figure>'
    )


# The same markup as pattern_svg and panel_html, in JavaScript; tests run it with node.
_RENDER_JS = r"""
function rxlInt(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
function rxlPct(a, b) { var t = Math.floor(1000 * a / b + 0.5); return Math.floor(t / 10) + "." + (t % 10) + "%"; }
function rxlPattern(c, size) {
  var step = size / c, rects = "";
  for (var g = 0; g < c; g++) {
    rects += '<rect x="' + (g * step).toFixed(2) + '" y="' + (g * step).toFixed(2) + '" width="' +
      step.toFixed(2) + '" height="' + step.toFixed(2) + '" fill="' + RXL_COLORS[g % 2] + '"></rect>';
  }
  return '<svg width="' + size + '" height="' + size + '" viewBox="0 0 ' + size + ' ' + size +
    '" role="img" aria-label="block-diagonal weight with ' + c + ' blocks">' +
    '<rect width="' + size + '" height="' + size + '" fill="#f4f4f4" stroke="#999999"></rect>' + rects + '</svg>';
}
function rxlPanel(p, ref) {
  var c = p.cardinality, d = p.d, w = p.group_width;
  var rows = [
    ["grouped 3×3 in conv2 (C·d)", c + " × " + d + " = " + rxlInt(w) + " channels: " + c + (c == 1 ? " group of " : " groups of ") + rxlInt(w / c)],
    ["block parameters, Table 2 count", rxlInt(p.template_params) + " (" + rxlPct(p.template_params, ref.template_params) +
      " of ResNet's " + rxlInt(ref.template_params) + ")"],
    ["block parameters with BN", rxlInt(p.block_params)],
    ["block multiply-adds at " + RXL_MAP + "×" + RXL_MAP, rxlInt(p.block_macs)],
    ["ResNeXt-50 (" + c + "×" + d + "d) parameters", rxlInt(p.model_params) + " (" + rxlPct(p.model_params, ref.model_params) + " of ResNet-50)"],
    ["ResNeXt-50 (" + c + "×" + d + "d) multiply-adds", rxlInt(p.model_macs) + " (" + rxlPct(p.model_macs, ref.model_macs) + " of ResNet-50)"],
    ["grouped 3×3 width, conv2 to conv5", p.stage_widths.map(rxlInt).join(", ")],
    ["d that keeps ResNet's block budget", String(p.budget_d)]
  ];
  var body = rows.map(function (r) { return "<tr><th>" + r[0] + "</th><td>" + r[1] + "</td></tr>"; }).join("");
  var blocks = c == 1 ? "1 diagonal block (dense)" : c + " diagonal blocks";
  var caption = "Dense-equivalent weight of the grouped 3×3: " + blocks + ", 1/" + c + " non-zero";
  return '<table class="rxl-numbers">' + body + '</table>' +
    '<figure class="rxl-pattern">' + rxlPattern(c, RXL_SIZE) + '<figcaption>' + caption + '</figcaption></figure>';
}
"""

_BOOT_JS = r"""
(function () {
  var root = document.getElementById("__ID__");
  if (!root) { return; }
  var data = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  var points = {};
  data.rows.forEach(function (row) {
    var p = {};
    data.fields.forEach(function (f, i) { p[f] = row[i]; });
    points[p.cardinality + "x" + p.d] = p;
  });
  var select = root.querySelector("select"), slider = root.querySelector("input[type='range']");
  var shown = root.querySelector(".rxl-d"), button = root.querySelector("button"), panel = root.querySelector(".rxl-panel");
  function current() { return points[select.value + "x" + data.widths[Number(slider.value)]]; }
  function update() {
    var p = current();
    shown.textContent = String(p.d);
    panel.innerHTML = rxlPanel(p, data.reference);
    var i = data.widths.indexOf(p.budget_d);
    button.disabled = i < 0;
    button.textContent = "keep ResNet's budget: d = " + p.budget_d;
  }
  select.addEventListener("change", update);
  slider.addEventListener("input", update);
  button.addEventListener("click", function () {
    var i = data.widths.indexOf(current().budget_d);
    if (i >= 0) { slider.value = String(i); update(); }
  });
  update();
})();
"""


def explorer_html(
    cardinality: int = 32,
    d: int = 4,
    cardinalities: Sequence[int] = CARDINALITIES,
    widths: Sequence[int] = WIDTHS,
) -> str:
    """A self-contained explorer for a page without a kernel: controls, numbers, pattern.

    The values for every (C, d) of the grid are computed here and embedded as JSON; an inline
    script updates the view when a control changes. The page shows (C, d) = (``cardinality``,
    ``d``) first, rendered in Python, so it is readable even where scripts do not run. The root
    element carries ``data-explorer="cardinality-width"``.
    """
    _check_grid(cardinality, d, cardinalities, widths)
    data = explorer_data(cardinalities, widths)
    root_id = f"rxl-explorer-{uuid.uuid4().hex[:12]}"
    options = "".join(
        f'<option value="{c}"{" selected" if c == cardinality else ""}>{c}</option>' for c in cardinalities
    )
    constants = (
        f"var RXL_COLORS = {json.dumps(list(PATTERN_COLORS))}; var RXL_SIZE = {PATTERN_SIZE}; "
        f"var RXL_MAP = {MAP_SIZE};"
    )
    point = explorer_point(cardinality, d)
    payload = json.dumps(data).replace("</", "<\\/")  # nothing inside may close the script element
    label = "cursor:default;margin-right:1.2em"
    return (
        f'<div id="{root_id}" class="rxl-explorer" data-explorer="cardinality-width" '
        f'style="border:1px solid #ddd;border-radius:6px;padding:0.8em;margin:0.5em 0">'
        f'<div class="rxl-controls" style="margin-bottom:0.6em">'
        f'<label style="{label}">cardinality C <select aria-label="cardinality C">{options}</select></label>'
        f'<label style="{label}">width d <input type="range" aria-label="bottleneck width d" min="0" '
        f'max="{len(widths) - 1}" step="1" value="{list(widths).index(d)}"> '
        f'<b class="rxl-d">{d}</b></label>'
        f'<button type="button">keep ResNet\'s budget: d = {point["budget_d"]}</button></div>'
        f'<div class="rxl-panel">{panel_html(point, data["reference"])}</div>'
        f'<script type="application/json">{payload}</script>'
        f"<script>{constants}{_RENDER_JS}{_BOOT_JS.replace('__ID__', root_id)}</script>"
        f"</div>"
    )


class CardinalityWidthExplorer(widgets.VBox):
    """The explorer as ipywidgets: a cardinality dropdown, a width slider, a button that sets d
    to the width keeping ResNet's budget, and ``panel`` (an HTML widget) that follows them."""

    def __init__(
        self,
        cardinality: int = 32,
        d: int = 4,
        cardinalities: Sequence[int] = CARDINALITIES,
        widths: Sequence[int] = WIDTHS,
    ) -> None:
        _check_grid(cardinality, d, cardinalities, widths)
        self.reference = explorer_point(1, 64)
        self.widths = list(widths)
        self.cardinality = widgets.Dropdown(options=list(cardinalities), value=cardinality, description="C")
        self.width = widgets.SelectionSlider(options=self.widths, value=d, description="d")
        self.keep_budget = widgets.Button(description="keep ResNet's budget")
        self.panel = widgets.HTML()
        self.cardinality.observe(self._update, names="value")
        self.width.observe(self._update, names="value")
        self.keep_budget.on_click(self._snap)
        super().__init__([widgets.HBox([self.cardinality, self.width, self.keep_budget]), self.panel])
        self._update()

    def point(self) -> dict[str, int | list[int]]:
        """``explorer_point`` for the controls' current (C, d)."""
        return explorer_point(self.cardinality.value, self.width.value)

    def _update(self, _change: object = None) -> None:
        point = self.point()
        self.keep_budget.description = f"keep ResNet's budget: d = {point['budget_d']}"
        self.keep_budget.disabled = point["budget_d"] not in self.widths
        self.panel.value = panel_html(point, self.reference)

    def _snap(self, _button: object = None) -> None:
        budget = self.point()["budget_d"]
        if budget in self.widths:
            self.width.value = budget


def explorer_widget(
    cardinality: int = 32,
    d: int = 4,
    cardinalities: Sequence[int] = CARDINALITIES,
    widths: Sequence[int] = WIDTHS,
) -> CardinalityWidthExplorer:
    """The live explorer for a kernel (Jupyter, Colab): ``explorer_html``'s numbers, recomputed
    by ``complexity`` whenever a control changes."""
    return CardinalityWidthExplorer(cardinality, d, cardinalities, widths)
