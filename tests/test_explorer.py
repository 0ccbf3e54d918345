"""Tests for resnext_lessons.explorer: the numbers it embeds, its HTML view, its widget."""

import json
import re
import shutil
import subprocess

import pytest

from resnext_lessons import complexity as cx
from resnext_lessons import explorer as ex
from resnext_lessons import models

SMALL = dict(cardinalities=(1, 4, 32), widths=(4, 14, 24, 64))


def embedded(page: str) -> dict:
    match = re.search(r'<script type="application/json">(.*?)</script>', page, re.S)
    assert match, "the explorer embeds its data as a JSON script element"
    return json.loads(match.group(1))


def test_point_is_what_complexity_and_the_models_say():
    p = ex.explorer_point(32, 4)
    assert p["group_width"] == 128 and p["stage_widths"] == [128, 256, 512, 1024]
    assert p["template_params"] == cx.template_params(32, 4) == 70_144
    assert p["budget_d"] == 4 and ex.explorer_point(8, 1)["budget_d"] == 14
    assert p["model_params"] == cx.count_params(models.resnext50_32x4d()) == 25_028_904
    assert p["model_macs"] == 4_230_479_872  # count_flops of resnext50_32x4d (test_complexity)
    assert p["block_params"] == cx.count_params(models.resnext50_32x4d().layer1[1])
    reference = ex.explorer_point(1, 64)
    assert reference["model_params"] == 25_557_032 and reference["template_params"] == 69_632


def test_html_embeds_the_values_complexity_computes():
    page = ex.explorer_html(32, 4, **SMALL)
    data = embedded(page)
    assert data["fields"] == list(ex.FIELDS)
    assert data["cardinalities"] == [1, 4, 32] and data["widths"] == [4, 14, 24, 64]
    assert len(data["rows"]) == 3 * 4
    for row in data["rows"]:
        point = dict(zip(data["fields"], row))
        assert point == ex.explorer_point(point["cardinality"], point["d"])
        assert point["template_params"] == cx.template_params(point["cardinality"], point["d"])
        assert point["model_macs"] == cx.resnext_macs([3, 4, 6, 3], point["cardinality"], point["d"])
    assert data["reference"] == ex.explorer_point(1, 64)


def test_html_is_self_contained_and_marked_for_the_site():
    page = ex.explorer_html()
    assert page.count('data-explorer="cardinality-width"') == 1
    assert "<script src" not in page and "http" not in page and "<link" not in page
    root_id = re.search(r'<div id="(rxl-explorer-[0-9a-f]+)"', page).group(1)
    assert f'getElementById("{root_id}")' in page
    assert root_id != re.search(r'<div id="(rxl-explorer-[0-9a-f]+)"', ex.explorer_html()).group(1)
    # Before any script runs, the page already shows the chosen point.
    assert ex.panel_html(ex.explorer_point(32, 4), ex.explorer_point(1, 64)) in page
    assert '<option value="32" selected>' in page


def test_panel_shows_the_numbers_and_the_pattern():
    panel = ex.panel_html(ex.explorer_point(4, 24), ex.explorer_point(1, 64))
    assert "4 × 24 = 96 channels: 4 groups of 24" in panel
    assert "69,888 (100.4% of ResNet's 69,632)" in panel
    assert panel.count('<rect x=') == 4 and "1/4 non-zero" in panel


def test_pattern_has_one_block_per_group_on_the_diagonal():
    svg = ex.pattern_svg(8, size=64)
    blocks = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"', svg)
    assert blocks == [(f"{8 * g:.2f}", f"{8 * g:.2f}", "8.00") for g in range(8)]


def test_off_grid_choices_are_refused_with_the_grid():
    with pytest.raises(ValueError, match=r"cardinality=3 is not on the explorer's grid \[1, 4, 32\]"):
        ex.explorer_html(3, 4, **SMALL)
    with pytest.raises(ValueError, match=r"d=5 .*\[4, 14, 24, 64\]"):
        ex.explorer_widget(4, 5, **SMALL)


def test_widget_follows_its_controls():
    w = ex.explorer_widget(32, 4, **SMALL)
    reference = ex.explorer_point(1, 64)
    assert w.panel.value == ex.panel_html(ex.explorer_point(32, 4), reference)
    w.cardinality.value = 4
    assert w.panel.value == ex.panel_html(ex.explorer_point(4, 4), reference)
    assert w.keep_budget.description.endswith("d = 24")
    w.keep_budget.click()  # d -> 24, the width that keeps ResNet's budget at C = 4
    assert w.width.value == 24
    assert w.panel.value == ex.panel_html(ex.explorer_point(4, 24), reference)
    w.width.value = 64
    assert "4 × 64 = 256 channels" in w.panel.value


def test_widget_disables_the_budget_button_off_the_grid():
    w = ex.explorer_widget(1, 4, cardinalities=(1, 2), widths=(4, 8))  # budget d = 64, 40
    assert w.keep_budget.disabled
    w.keep_budget.click()
    assert w.width.value == 4


node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")


def run_node(script: str) -> str:
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def page_script(page: str) -> str:
    return re.findall(r"<script>(.*?)</script>", page, re.S)[-1]


@node
def test_the_pages_script_renders_what_python_renders():
    """Over the whole default grid, the JavaScript panel is the Python panel, character for character."""
    page = ex.explorer_html()
    data = embedded(page)
    script = page_script(page).split("(function () {")[0]  # the constants and render functions
    out = run_node(
        script + f"var data = {json.dumps(data)};"
        "data.rows.forEach(function (row) { var p = {}; data.fields.forEach(function (f, i) { p[f] = row[i]; });"
        "console.log(JSON.stringify(rxlPanel(p, data.reference))); });"
    )
    rendered = [json.loads(line) for line in out.splitlines()]
    reference = data["reference"]
    expected = [ex.panel_html(dict(zip(data["fields"], row)), reference) for row in data["rows"]]
    assert len(rendered) == len(expected) == len(ex.CARDINALITIES) * len(ex.WIDTHS)
    assert rendered == expected


FAKE_DOM = r"""
function El(props) { this.listeners = {}; Object.assign(this, props); }
El.prototype.addEventListener = function (type, fn) { this.listeners[type] = fn; };
El.prototype.fire = function (type) { this.listeners[type](); };
var select = new El({value: "__C__"}), slider = new El({value: "__I__"}), shown = new El({textContent: ""});
var button = new El({textContent: "", disabled: false}), panel = new El({innerHTML: ""});
var json = new El({textContent: __DATA__});
var root = {querySelector: function (q) {
  return {"script[type='application/json']": json, "select": select, "input[type='range']": slider,
          ".rxl-d": shown, "button": button, ".rxl-panel": panel}[q]; }};
var document = {getElementById: function (id) { return id === "__ID__" ? root : null; }};
"""


@node
def test_the_pages_controls_update_its_numbers():
    page = ex.explorer_html(32, 4, **SMALL)
    root_id = re.search(r'<div id="(rxl-explorer-[0-9a-f]+)"', page).group(1)
    data = embedded(page)
    dom = (FAKE_DOM.replace("__C__", "32").replace("__I__", "0").replace("__ID__", root_id)
           .replace("__DATA__", json.dumps(json.dumps(data))))
    out = run_node(
        dom + page_script(page)
        + "console.log(JSON.stringify([panel.innerHTML, shown.textContent, button.textContent]));"
        + "select.value = '4'; select.fire('change');"
        + "console.log(JSON.stringify([panel.innerHTML, shown.textContent, button.textContent]));"
        + "button.fire('click');"
        + "console.log(JSON.stringify([panel.innerHTML, shown.textContent, slider.value]));"
    )
    first, changed, snapped = (json.loads(line) for line in out.splitlines())
    reference = ex.explorer_point(1, 64)
    assert first == [ex.panel_html(ex.explorer_point(32, 4), reference), "4", "keep ResNet's budget: d = 4"]
    assert changed == [ex.panel_html(ex.explorer_point(4, 4), reference), "4", "keep ResNet's budget: d = 24"]
    assert snapped == [ex.panel_html(ex.explorer_point(4, 24), reference), "24", "2"]
