"""The leaderboard's tables as Markdown, CSV and LaTeX, and its plot (PNG)."""
import csv
import os

from harness.results.compare import Difference
from harness.results.tables import OURS, PUBLISHED, Cell

INCOMPLETE_MARK = "†"
INCOMPLETE_NOTE = f"{INCOMPLETE_MARK}: computed from an incomplete set of seeds or datasets (see Notes)."
SIGNIFICANT_MARK = "*"  # a paired difference whose 95% CI excludes 0
MISSING = "—"


def _number(cell, show_spread, plus_minus, mark):
    if cell.mean is None:
        return MISSING
    text = f"{cell.mean:.2f}"
    if show_spread and cell.spread is not None:
        text += f" {plus_minus} {cell.spread:.2f}"
    return text + (mark if cell.incomplete else "")


def _signed(value):
    return f"{round(value, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00" for a difference that rounds to nothing


def _difference(difference):
    """+1.23* [+0.40, +2.05] p=0.004, or the bare difference where there is no test."""
    if difference.low is None:
        return _signed(difference.delta)
    mark = SIGNIFICANT_MARK if difference.excludes_zero else ""
    return (f"{_signed(difference.delta)}{mark} [{_signed(difference.low)}, {_signed(difference.high)}] "
            f"p={difference.p:.3f}")


def _text(value, table, plus_minus, mark):
    if isinstance(value, Cell):
        return _number(value, table.show_spread, plus_minus, mark)
    if isinstance(value, Difference):
        return _difference(value)
    return value


def _notes(table):
    holds_cells = any(isinstance(value, Cell) for row in table.rows for value in row)
    return " ".join([*table.notes, *([INCOMPLETE_NOTE] if holds_cells else [])])


def markdown(tables):
    blocks = []
    for table in tables:
        lines = [f"### {table.title}", "", "| " + " | ".join(table.header) + " |",
                 "|" + "|".join("---" for _ in table.header) + "|"]
        for row in table.rows:
            lines.append("| " + " | ".join(_text(value, table, "±", INCOMPLETE_MARK) for value in row) + " |")
        lines += ["", _notes(table)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _empty_if_none(value):
    return "" if value is None else value


# The CSV columns a number column becomes: suffixes of its name, filled by _csv_values.
_CSV_SUFFIXES = {Cell: ("", " std", " complete"), Difference: ("", " CI low", " CI high", " p", " CI excludes 0")}


def _csv_values(value):
    if isinstance(value, Cell):
        return [_empty_if_none(value.mean), _empty_if_none(value.spread),
                value.mean is not None and not value.incomplete]
    return [value.delta, _empty_if_none(value.low), _empty_if_none(value.high), _empty_if_none(value.p),
            value.excludes_zero]


def _column_kind(table, index):
    """Cell or Difference where the column holds numbers, else None."""
    return next((kind for row in table.rows for kind in _CSV_SUFFIXES if isinstance(row[index], kind)), None)


def write_csv(table, path):
    """One row per table row; a number column becomes <column> (the mean), <column> std (ours: over seeds) and
    <column> complete; a difference column <column>, its CI low and high, p, and whether the CI excludes 0."""
    kinds = [_column_kind(table, index) for index in range(len(table.header))]
    header = []
    for name, kind in zip(table.header, kinds):
        header += [name + suffix for suffix in _CSV_SUFFIXES[kind]] if kind else [name]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in table.rows:
            values = []
            for value, kind in zip(row, kinds):
                if kind is None:
                    values.append(value)
                else:  # a blank cell of a number column stays blank
                    values += _csv_values(value) if isinstance(value, kind) else [""] * len(_CSV_SUFFIXES[kind])
            writer.writerow(values)


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                   "Δ": r"$\Delta$", "±": r"$\pm$", "×": r"$\times$", "−": "--"}


def _latex_text(text):
    return "".join(_LATEX_SPECIALS.get(char, char) for char in str(text))


def latex(tables):
    """One tabular per table (booktabs); published rows in italics."""
    blocks = []
    for table in tables:
        columns = "".join("r" if _column_kind(table, i) else "l" for i in range(len(table.header)))
        lines = [f"% {table.title}", f"\\begin{{tabular}}{{{columns}}}", "\\toprule",
                 " & ".join(_latex_text(name) for name in table.header) + " \\\\", "\\midrule"]
        for row in table.rows:
            cells = [_latex_text(v) if isinstance(v, str) else _text(v, table, "$\\pm$", "$^\\dagger$") for v in row]
            if PUBLISHED in row:
                cells = [f"\\textit{{{cell}}}" if cell else cell for cell in cells]
            lines.append(" & ".join(cells) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def plot_base2new(table, path):
    """Left: base vs novel accuracy of our runs (one point per method and dataset), with the line novel = base.
    Right: HM per dataset, with error bars of the spread of the per-seed HMs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    column = {name: index for index, name in enumerate(table.header)}
    points = [(row[column["Dataset"]], (row[column["Method"]], row[column["Config"]]), row[column["Base"]],
               row[column["Novel"]], row[column["HM"]])
              for row in table.rows if row[column["Source"]] == OURS]
    points = [point for point in points if point[2].mean is not None and point[3].mean is not None]
    if not points:
        return None
    methods = sorted({point[1] for point in points})
    datasets = list(dict.fromkeys(point[0] for point in points))
    colors = {method: plt.cm.tab10(index % 10) for index, method in enumerate(methods)}
    label = {method: f"{method[0]} [{method[1]}]" if method[1] else method[0] for method in methods}

    figure, (scatter, bars) = plt.subplots(1, 2, figsize=(12, 4.5))
    for dataset, method, base, novel, _ in points:
        scatter.scatter(base.mean, novel.mean, color=colors[method], label=label[method],
                        marker="x" if base.incomplete or novel.incomplete else "o")
        if len(datasets) > 1:
            scatter.annotate(dataset, (base.mean, novel.mean), fontsize=7, xytext=(3, 3), textcoords="offset points")
    # The distance below the line is the gap from base to novel accuracy, the trade-off the protocol measures.
    low = min(min(point[2].mean, point[3].mean) for point in points)
    high = max(max(point[2].mean, point[3].mean) for point in points)
    scatter.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=0.8, label="novel = base")
    handles, labels = scatter.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    scatter.legend(unique.values(), unique.keys(), fontsize=8)
    scatter.set_xlabel("base accuracy (%)")
    scatter.set_ylabel("novel accuracy (%)")
    scatter.set_title("Base vs novel (mean over seeds; x: incomplete)")

    width = 0.8 / len(methods)
    for index, method in enumerate(methods):
        hms = {dataset: hm for dataset, other, _, _, hm in points if other == method}
        positions = [d + (index - (len(methods) - 1) / 2) * width for d in range(len(datasets))]
        heights = [hms[dataset].mean if dataset in hms else 0.0 for dataset in datasets]
        errors = [hms[dataset].spread or 0.0 if dataset in hms else 0.0 for dataset in datasets]
        bars.bar(positions, heights, width, yerr=errors, capsize=2, color=colors[method], label=label[method])
    bars.set_xticks(range(len(datasets)))
    bars.set_xticklabels(datasets, rotation=30, ha="right", fontsize=8)
    bars.set_ylabel("HM (%)")
    bars.set_title("HM per dataset (error bars: spread of the per-seed HMs)")
    bars.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_outputs(tables, out_dir):
    """leaderboard.md, leaderboard.tex, one CSV per table and leaderboard.png (base-to-novel); returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, text in (("leaderboard.md", markdown(tables)), ("leaderboard.tex", latex(tables))):
        path = os.path.join(out_dir, name)
        with open(path, "w") as file:
            file.write(text)
        paths.append(path)
    for table in tables:
        path = os.path.join(out_dir, f"{table.name}.csv")
        write_csv(table, path)
        paths.append(path)
    base2new = next((table for table in tables if table.name == "base2new"), None)
    if base2new is not None:
        plotted = plot_base2new(base2new, os.path.join(out_dir, "leaderboard.png"))
        if plotted:
            paths.append(plotted)
    return paths
