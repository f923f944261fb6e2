"""HTML and CSV reports for training and accuracy assessment (no qgis, no osgeo, no torch).

Both Processing and the dock write the same reports, so they are built here from plain Python
values. The HTML is self-contained (inline CSS and SVG, no scripts, no external fetches) because
users e-mail these files and open them offline; every value written comes from the caller, so
the report says only what was measured. All text from the user (class names, paths) is escaped.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClassRow",
    "TrainingReport",
    "AccuracyReport",
    "line_plot_svg",
    "render_training_report",
    "render_accuracy_report",
    "accuracy_csv_text",
]


@dataclass
class ClassRow:
    """One class as the reports show it: original value, name, colour and pixel counts."""

    value: int
    name: str
    color: tuple[int, int, int]
    training_pixels: int = 0
    validation_pixels: int = 0


@dataclass
class TrainingReport:
    """Everything the training report shows; ``history`` is the engine's per-epoch list of dicts."""

    raster: str
    samples: str
    model_path: str
    classes: list[ClassRow]
    history: list[dict[str, Any]]
    parameters: Mapping[str, Any]
    device: str
    train_seconds: float
    selection: str
    best_epoch: int | None = None
    raster_shape: tuple[int, int, int] | None = None  # (bands, height, width)
    notes: list[str] = field(default_factory=list)
    cross_validation: Any = None  # workflow.CrossValidation: folds, class_values, summary, untested, seconds
    combination: str = ""  # which model the map uses (RSSGL, the spectral model, or their weighted pool)
    stage: str = ""  # which stage made the map, in words (workflows.train.TrainResult.stage_text)


@dataclass
class AccuracyReport:
    """Inputs of the accuracy report; ``summary`` is core.metrics.accuracy_summary's result."""

    classification: str
    reference: str
    classes: list[ClassRow]
    confusion: Sequence[Sequence[int]]
    summary: Mapping[str, Any]
    pixel_area: float
    area_unit: str
    mapped_pixels: Sequence[int]
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Small helpers

_CSS = """
body{font-family:Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}
.sw{display:inline-block;width:14px;height:14px;border:1px solid #555;vertical-align:middle}
.muted{color:#666;font-size:12px}.diag{background:#e6f4e6;font-weight:bold}.warn{color:#a15c00}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage, or an em dash when undefined (NaN: no pixels to divide by)."""
    if value is None or not math.isfinite(float(value)):
        return "&mdash;"
    return f"{100.0 * float(value):.{digits}f}"


def _num(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(float(value)):
        return "&mdash;"
    return f"{float(value):,.{digits}f}"


def _swatch(color: Sequence[int]) -> str:
    r, g, b = (int(c) for c in color[:3])
    return f'<span class="sw" style="background:rgb({r},{g},{b})"></span>'


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 1) -> str:
    """An HTML table; cells are already-escaped HTML; columns from ``numeric_from`` are right-aligned."""
    out = ["<table><tr>", *(f"<th>{h}</th>" for h in header), "</tr>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            css = ' class="n"' if i >= numeric_from else ""
            out.append(f"<td{css}>{cell}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# SVG plot


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    ticks = []
    value = start
    while value <= hi + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _axis_range(series: Sequence[tuple[str, Sequence[float], str, str]], axis: str,
                percent_axes: tuple[str, ...]) -> tuple[float, float]:
    """The value range of one y axis over its series' finite values: percentages stay within 0-100 with at
    least a 10-point window, other values get 5 % padding (not below 0 where they are all non-negative)."""
    values = [float(v) for _, vals, _, a in series if a == axis for v in vals
              if v is not None and math.isfinite(float(v))]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if axis in percent_axes and 0.0 <= lo and hi <= 100.0:
        # percentages: stay inside 0-100 and show at least a 10-point window
        lo, hi = max(0.0, lo - 5.0), min(100.0, hi + 5.0)
        return (max(0.0, hi - 10.0), hi) if hi - lo < 10.0 else (lo, hi)
    if hi == lo:
        lo, hi = lo - 0.5 * (abs(lo) or 1), hi + 0.5 * (abs(hi) or 1)
    pad = 0.05 * (hi - lo)
    return (max(0.0, lo - pad) if min(values) >= 0 else lo - pad), hi + pad


def _y_axes_svg(series: Sequence[tuple[str, Sequence[float], str, str]],
                ranges: dict[str, tuple[float, float]], sy: Callable[[float, str], float], left: int, pw: int,
                top: int, ph: int, width: int) -> list[str]:
    """Ticks (grid lines for the left axis) and the rotated title of each y axis that has series, in the
    colour of its first series."""
    parts: list[str] = []
    for axis in ("left", "right"):
        names = [label for label, _, _, a in series if a == axis]
        if not names:
            continue
        colour = next(c for _, _, c, a in series if a == axis)
        lo, hi = ranges[axis]
        for tick in _nice_ticks(lo, hi, 5):
            py = sy(tick, axis)
            if axis == "left":
                parts.append(f'<line x1="{left}" y1="{py:.1f}" x2="{left + pw}" y2="{py:.1f}" stroke="#eee"/>')
                parts.append(f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end" fill="{colour}">{tick:g}</text>')
            else:
                parts.append(f'<text x="{left + pw + 6}" y="{py + 4:.1f}" fill="{colour}">{tick:g}</text>')
        tx = 14 if axis == "left" else width - 10
        parts.append(
            f'<text transform="translate({tx},{top + ph / 2:.1f}) rotate(-90)" text-anchor="middle" '
            f'fill="{colour}">{_esc(", ".join(names))}</text>'
        )
    return parts


def _series_svg(xs: list[float], series: Sequence[tuple[str, Sequence[float], str, str]],
                sx: Callable[[float], float], sy: Callable[[float, str], float]) -> list[str]:
    """Each series as polylines broken where values are missing (NaN), a dot where a piece is one point."""
    parts: list[str] = []
    for _label, values, colour, axis in series:
        segment: list[str] = []
        paths: list[list[str]] = []
        for xv, yv in zip(xs, values, strict=False):
            if yv is None or not math.isfinite(float(yv)):
                if segment:
                    paths.append(segment)
                segment = []
                continue
            segment.append(f"{sx(xv):.1f},{sy(float(yv), axis):.1f}")
        if segment:
            paths.append(segment)
        for points in paths:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>')
            if len(points) == 1:
                cx, cy = points[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
    return parts


def _legend_svg(series: Sequence[tuple[str, Sequence[float], str, str]], left: int) -> list[str]:
    """The legend above the plot: one swatch and label (with its axis) per series."""
    parts: list[str] = []
    lx = left + 10
    for label, _, colour, axis in series:
        parts.append(f'<line x1="{lx}" y1="12" x2="{lx + 18}" y2="12" stroke="{colour}" stroke-width="3"/>')
        parts.append(f'<text x="{lx + 22}" y="16">{_esc(label)} ({axis} axis)</text>')
        lx += 40 + 7 * len(label) + 70
    return parts


def line_plot_svg(
    x: Sequence[float],
    series: Sequence[tuple[str, Sequence[float], str, str]],
    *,
    x_label: str,
    width: int = 720,
    height: int = 300,
    percent_axes: tuple[str, ...] = ("right",),
) -> str:
    """A two-axis line plot as inline SVG.

    ``series`` holds (label, values, colour, axis) with axis "left" or "right", so loss (left) and
    accuracy in percent (right) share one plot without one flattening the other. NaN values
    (e.g. epochs without validation) are skipped. Axes in ``percent_axes`` stay within 0-100.
    """
    left, right, top, bottom = 62, 62, 30, 44
    pw, ph = width - left - right, height - top - bottom
    xs = [float(v) for v in x]
    if not xs:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40"><text x="10" y="25">' \
               "No epochs were recorded.</text></svg>"
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1

    ranges = {"left": _axis_range(series, "left", percent_axes),
              "right": _axis_range(series, "right", percent_axes)}

    def sx(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * pw

    def sy(v: float, axis: str) -> float:
        lo, hi = ranges[axis]
        return top + ph - (v - lo) / (hi - lo) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica,Arial,sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="white" stroke="#999"/>',
    ]
    for tick in _nice_ticks(x_lo, x_hi, 6):
        px = sx(tick)
        parts.append(f'<line x1="{px:.1f}" y1="{top + ph}" x2="{px:.1f}" y2="{top + ph + 4}" stroke="#666"/>')
        parts.append(f'<text x="{px:.1f}" y="{top + ph + 16}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">{_esc(x_label)}</text>')
    parts += _y_axes_svg(series, ranges, sy, left, pw, top, ph, width)
    parts += _series_svg(xs, series, sx, sy)
    parts += _legend_svg(series, left)
    parts.append("</svg>")
    return "".join(parts)


# ----------------------------------------------------------------------------------------------
# Training report

_SELECTION_TEXT = {
    "fit": "fit: RSSGL trained on every training pixel and stopped when it fitted them no better for a few "
           "epochs (nothing left to learn); no pixel was held out. The accuracy away from the samples is what "
           "cross-validation below estimates.",
    "validation": "validation: the epoch with the best accuracy on validation pixels held out from the "
                  "training samples was kept (honest: no test pixel was looked at).",
    "loss": "loss: too few samples for a validation split, so the epoch with the lowest training loss was kept.",
    "paper": "paper protocol: the epoch with the best accuracy on the TEST pixels was kept, as the authors "
             "did. This selects on the test set; use it only to reproduce the paper.",
}


#: Validation pixels are carved from the same polygons as the training pixels: neighbours of
#: training pixels, so their accuracy overstates the map's (the demo: 100 % validation, 82 % on
#: independent pixels). The report says so next to the number.
VALIDATION_CAVEAT = ("Validation pixels come from the same polygons as the training pixels, so this "
                     "overstates the map's accuracy; measure it with independent reference samples "
                     "(RSSGL > Assess accuracy), or train with cross-validation folds.")


def _cross_validation_html(cv, classes: Sequence[ClassRow]) -> list[str]:
    """The cross-validation section: pooled accuracy over folds of whole samples, per class."""
    s = cv.summary
    out = [f"<h2>Cross-validated accuracy ({cv.folds} folds of whole samples)</h2>",
           '<p class="muted">Each fold\'s model was trained without that fold\'s samples (whole polygons) and '
           "then classified them, so no pixel was tested by a model that saw any pixel of its polygon. It "
           "estimates the accuracy in places without any training sample (e.g. fields nobody drew a polygon "
           "in), with one fold of the samples fewer; near the training polygons the map is usually more "
           "accurate. It is not a random sample of the map: for the map's accuracy use independent reference "
           "samples (Assess accuracy).</p>"]
    overall = [
        ("Pixels tested", f"{int(s['n']):,}"),
        ("Overall accuracy (OA) %", _ci(s["oa"], s.get("oa_ci95"))),
        ("Average accuracy (AA) %", _pct(s["aa"])),
        ("Kappa x 100", _ci(s["kappa"], s.get("kappa_ci95"))),
        ("Time (all folds)", f"{cv.seconds:.1f} s"),
    ]
    out.append(_table(["Measure", "Value (95 % confidence interval)"], overall))
    candidates = getattr(cv, "candidates", None) or []
    if len(candidates) > 1:
        out.append("<h3>Which model the map uses</h3>")
        out.append('<p class="muted">The same folds scored RSSGL, the per-pixel spectral model (a kernel classifier '
                   "of the kind SVM users know) and weighted combinations of their class probabilities, each "
                   "model's confidence first calibrated on the held-out pixels "
                   f"(temperature: RSSGL {_num(cv.pool.temperature)}, spectral model "
                   f"{_num(cv.pool.spectral_temperature)}; above 1 = less confident than trained). "
                   "The one with the best cross-validated log-likelihood is used for the map if it beats the "
                   "spectral model alone by more than one standard error (two for a combination at least 3/4 "
                   "RSSGL) and, if at least half RSSGL, gets as many held-out pixels right; otherwise the light "
                   "combination (RSSGL x 0.25), or the default half-and-half combination where every candidate "
                   "got every held-out pixel right (the folds cannot rank them then). With few samples the "
                   "estimates are noisy, so RSSGL must earn its share. The accuracies above are the chosen "
                   "one's.</p>")
        rows = [[_esc(c.label), _ci(c.summary["oa"], c.summary.get("oa_ci95")), _pct(c.summary["kappa"]),
                 _num(c.log_loss, 3), _num(getattr(c, "gain_se", float("nan")), 1),
                 "chosen" if c.weight == cv.pool.weight else ""] for c in candidates]
        out.append(_table(["Model", "OA % (95 % CI)", "Kappa x 100", "Log-loss",
                           "Gain over spectral (standard errors)", ""], rows, numeric_from=1))
    by_value = {c.value: c for c in classes}
    rows = []
    for i, value in enumerate(cv.class_values):
        c = by_value.get(value)
        name = f"{_swatch(c.color)} {_esc(c.name)}" if c is not None else str(value)
        rows.append([str(value), name, f"{int(s['reference_counts'][i]):,}", _pct(s["producers"][i]),
                     _pct(s["users"][i]), _pct(s["f1"][i])])
    out.append(_table(["Value", "Class", "Tested pixels", "Producer's %", "User's %", "F1 %"], rows, numeric_from=2))
    if cv.untested:
        out.append('<p class="warn">' + _esc("Not tested (fewer than 2 separate samples, always trained on): "
                                             + ", ".join(cv.untested) + ".") + "</p>")
    return out


def _history_series(history: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float], list[float], list[float]]:
    xs, loss, val, test = [], [], [], []
    for i, epoch in enumerate(history):
        xs.append(float(epoch.get("iteration", (i + 1))))
        loss.append(float(epoch.get("loss", float("nan"))))
        val_oa = epoch.get("val_oa")
        val.append(100.0 * float(val_oa) if val_oa is not None else float("nan"))
        test_oa = epoch.get("test_oa")
        test.append(100.0 * float(test_oa) if test_oa is not None else float("nan"))
    return xs, loss, val, test


def render_training_report(report: TrainingReport) -> str:
    """The training report as one self-contained HTML page."""
    xs, loss, val, test = _history_series(report.history)
    series = [("training loss", loss, "#c0392b", "left")]
    val_name = "training-pixel OA %" if report.selection == "fit" else "validation OA %"
    if any(math.isfinite(v) for v in val):
        series.append((val_name, val, "#1f77b4", "right"))
    if any(math.isfinite(v) for v in test):
        series.append(("test OA % (paper protocol)", test, "#7f7f7f", "right"))
    body = ["<h1>RSSGL training report</h1>"]
    body.append(f'<p class="muted">Model file: {_esc(report.model_path)}</p>')
    for note in report.notes:
        body.append(f'<p class="warn">{_esc(note)}</p>')
    summary = [
        ("Raster", _esc(report.raster)),
        ("Training samples", _esc(report.samples)),
        ("Raster size", _esc("{} bands x {} rows x {} columns".format(*report.raster_shape))
         if report.raster_shape else "&mdash;"),
        ("Device", _esc(report.device)),
        ("Training time", f"{report.train_seconds:.1f} s"),
        ("Epochs run", str(len(report.history))),
        ("Selected epoch", _esc(report.best_epoch) if report.best_epoch is not None else "&mdash;"),
        ("Model selection", _esc(_SELECTION_TEXT.get(report.selection, report.selection))),
    ]
    if report.stage:
        summary.append(("Stage that made the map", _esc(report.stage)))
    if report.combination:
        summary.append(("Model used for the map", _esc(report.combination)))
    best_val = [v for v in val if math.isfinite(v)]
    if best_val:
        chosen = None
        if report.best_epoch is not None and 0 <= report.best_epoch - 1 < len(val):
            chosen = val[report.best_epoch - 1]
        value = f"{chosen:.2f} %" if chosen is not None and math.isfinite(chosen) else "&mdash;"
        if report.selection == "validation":  # validation pixels lie in the training polygons: say what it means
            value += f'<br><span class="muted">{_esc(VALIDATION_CAVEAT)}</span>'
        summary.append(("Training-pixel OA of the kept model" if report.selection == "fit"
                        else "Validation OA of the kept model", value))
    body.append(_table(["Item", "Value"], summary, numeric_from=99))
    if report.cross_validation is not None:
        body.extend(_cross_validation_html(report.cross_validation, report.classes))
    body.append("<h2>Loss and validation accuracy per epoch</h2>")
    body.append(line_plot_svg(xs, series, x_label="iteration"))
    body.append("<h2>Classes</h2>")
    body.append(_table(
        ["Value", "Name", "Colour", "Training pixels", "Validation pixels"],
        ([str(c.value), _esc(c.name), _swatch(c.color), str(c.training_pixels), str(c.validation_pixels)]
         for c in report.classes),
        numeric_from=3,
    ))
    body.append("<h2>Parameters</h2>")
    body.append(_table(["Parameter", "Value"], ([_esc(k), _esc(v)] for k, v in report.parameters.items()),
                       numeric_from=99))
    body.append("<h2>Per-epoch log</h2>")
    rows = []
    for i, epoch in enumerate(report.history):
        rows.append([str(i + 1), _esc(epoch.get("iteration", "")), _num(epoch.get("loss"), 4),
                     _pct(epoch.get("val_oa")), _num(epoch.get("lr"), 5), _num(epoch.get("seconds"), 2)])
    body.append(_table(["Epoch", "Iteration", "Loss", val_name.replace(" %", " %").capitalize(), "Learning rate",
                        "Seconds"], rows))
    return _page("RSSGL training report", "\n".join(body))


# ----------------------------------------------------------------------------------------------
# Accuracy report


def _ci(value: float, half: float | None, digits: int = 2) -> str:
    if half is None or not math.isfinite(float(half)):
        return _pct(value, digits)
    return f"{_pct(value, digits)} &plusmn; {_pct(half, digits)}"


def render_accuracy_report(report: AccuracyReport) -> str:
    """The accuracy report as one self-contained HTML page (rows of the matrix = reference)."""
    s = report.summary
    names = [c.name for c in report.classes]
    body = ["<h1>RSSGL accuracy assessment</h1>"]
    body.append(f'<p class="muted">Classification: {_esc(report.classification)}<br>'
                f"Reference: {_esc(report.reference)}</p>")
    for note in report.notes:
        body.append(f'<p class="warn">{_esc(note)}</p>')
    overall = [
        ("Reference pixels compared", str(s["n"])),
        ("Overall accuracy (OA) %", _ci(s["oa"], s.get("oa_ci95"))),
        ("Average accuracy (AA) %", _pct(s["aa"])),
        ("Kappa x 100", _ci(s["kappa"], s.get("kappa_ci95"))),
    ]
    adjusted = s.get("area_adjusted")
    if adjusted:
        overall.append(("Area-adjusted OA % (Olofsson et al. 2014)", _ci(adjusted["oa"], adjusted.get("oa_ci95"))))
    body.append(_table(["Measure", "Value (95 % confidence interval)"], overall))
    body.append('<p class="muted">Confidence intervals are normal approximations (half-widths shown). '
                "They assume the reference pixels are a random sample; neighbouring pixels of the same polygon "
                "are not independent, so treat them as optimistic.</p>")
    body.append("<h2>Per-class accuracy</h2>")
    rows = []
    for i, c in enumerate(report.classes):
        rows.append([
            str(c.value), f"{_swatch(c.color)} {_esc(c.name)}", str(s["reference_counts"][i]),
            _pct(s["producers"][i]), _pct(s["users"][i]), _pct(s["f1"][i]),
            f"{report.mapped_pixels[i]:,}", _num(report.mapped_pixels[i] * report.pixel_area, 2),
        ])
    body.append(_table(["Value", "Class", "Reference pixels", "Producer's %", "User's %", "F1 %",
                        "Mapped pixels", f"Mapped area ({_esc(report.area_unit)})"], rows, numeric_from=2))
    if adjusted:
        body.append("<h2>Area-adjusted estimates (Olofsson et al. 2014)</h2>")
        body.append('<p class="muted">Strata are the map classes weighted by their mapped area; areas are the '
                    "estimated true area of each reference class.</p>")
        rows = []
        for i, c in enumerate(report.classes):
            rows.append([
                str(c.value), _esc(c.name),
                _ci(adjusted["users"][i], adjusted["users_ci95"][i]),
                _ci(adjusted["producers"][i], adjusted["producers_ci95"][i]),
                f"{_num(adjusted['area'][i])} &plusmn; {_num(adjusted['area_ci95'][i])}",
            ])
        body.append(_table(["Value", "Class", "User's %", "Producer's %", f"Area ({_esc(report.area_unit)})"],
                           rows, numeric_from=2))
    body.append("<h2>Confusion matrix</h2>")
    body.append('<p class="muted">Rows: reference class. Columns: mapped class. Diagonal: correct pixels.</p>')
    header = ["Reference \\ Map", *(_esc(n) for n in names), "Total"]
    out = ["<table><tr>", *(f"<th>{h}</th>" for h in header), "</tr>"]
    for i, row in enumerate(report.confusion):
        out.append(f"<tr><th>{_esc(names[i])}</th>")
        for j, count in enumerate(row):
            css = "n diag" if i == j else "n"
            out.append(f'<td class="{css}">{int(count):,}</td>')
        out.append(f'<td class="n">{int(sum(row)):,}</td></tr>')
    out.append("<tr><th>Total</th>")
    for j in range(len(names)):
        out.append(f'<td class="n">{int(sum(r[j] for r in report.confusion)):,}</td>')
    out.append(f'<td class="n">{int(s["n"]):,}</td></tr></table>')
    body.append("".join(out))
    return _page("RSSGL accuracy assessment", "\n".join(body))


CSV_HEADER = ("metric", "class_value", "class_name", "mapped_value", "value", "ci95")


def accuracy_csv_text(report: AccuracyReport) -> str:
    """The accuracy report as long-format CSV: one measured value per row, machine-readable.

    Columns: metric, class_value, class_name, mapped_value (only for confusion cells), value, ci95
    (half-width of the 95 % interval where one exists). Accuracies are fractions in [0, 1], areas in
    the raster's map units squared, NaN where undefined.
    """
    s = report.summary
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)

    def row(metric, value, ci=None, cls=None, mapped=None):
        writer.writerow([
            metric,
            "" if cls is None else cls.value,
            "" if cls is None else cls.name,
            "" if mapped is None else mapped,
            repr(float(value)) if isinstance(value, float) else value,
            "" if ci is None else repr(float(ci)),
        ])

    row("reference_pixels", int(s["n"]))
    row("overall_accuracy", float(s["oa"]), s.get("oa_ci95"))
    row("average_accuracy", float(s["aa"]))
    row("kappa", float(s["kappa"]), s.get("kappa_ci95"))
    adjusted = s.get("area_adjusted")
    if adjusted:
        row("area_adjusted_overall_accuracy", float(adjusted["oa"]), adjusted.get("oa_ci95"))
    for i, c in enumerate(report.classes):
        row("producers_accuracy", float(s["producers"][i]), cls=c)
        row("users_accuracy", float(s["users"][i]), cls=c)
        row("f1", float(s["f1"][i]), cls=c)
        row("reference_count", int(s["reference_counts"][i]), cls=c)
        row("mapped_pixels", int(report.mapped_pixels[i]), cls=c)
        row("mapped_area", float(report.mapped_pixels[i] * report.pixel_area), cls=c)
        if adjusted:
            row("area_adjusted_users_accuracy", float(adjusted["users"][i]), adjusted["users_ci95"][i], cls=c)
            row("area_adjusted_producers_accuracy", float(adjusted["producers"][i]),
                adjusted["producers_ci95"][i], cls=c)
            row("area_adjusted_area", float(adjusted["area"][i]), adjusted["area_ci95"][i], cls=c)
    for i, c in enumerate(report.classes):
        for j, m in enumerate(report.classes):
            row("confusion", int(report.confusion[i][j]), cls=c, mapped=m.value)
    return buffer.getvalue()
