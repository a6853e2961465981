"""The leaderboard's tables as Markdown, CSV and LaTeX, and its plot (PNG)."""
import csv
import os

from harness.results.tables import OURS, PUBLISHED, Cell

INCOMPLETE_MARK = "†"
INCOMPLETE_NOTE = f"{INCOMPLETE_MARK}: computed from an incomplete set of seeds or datasets (see Notes)."
MISSING = "—"


def _number(cell, show_spread, plus_minus, mark):
    if cell.mean is None:
        return MISSING
    text = f"{cell.mean:.2f}"
    if show_spread and cell.spread is not None:
        text += f" {plus_minus} {cell.spread:.2f}"
    return text + (mark if cell.incomplete else "")


def markdown(tables):
    blocks = []
    for table in tables:
        lines = [f"### {table.title}", "", "| " + " | ".join(table.header) + " |",
                 "|" + "|".join("---" for _ in table.header) + "|"]
        for row in table.rows:
            cells = [_number(v, table.show_spread, "±", INCOMPLETE_MARK) if isinstance(v, Cell) else v for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", " ".join([*table.notes, INCOMPLETE_NOTE])]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_csv(table, path):
    """One row per table row; each number column becomes <column> (the mean), <column> std (ours: over seeds)
    and <column> complete."""
    numeric = [any(isinstance(row[i], Cell) for row in table.rows) for i in range(len(table.header))]
    header = []
    for name, is_numeric in zip(table.header, numeric):
        header += [name, f"{name} std", f"{name} complete"] if is_numeric else [name]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in table.rows:
            values = []
            for value, is_numeric in zip(row, numeric):
                if is_numeric:
                    values += ["" if value.mean is None else value.mean, "" if value.spread is None else value.spread,
                               value.mean is not None and not value.incomplete]
                else:
                    values.append(value)
            writer.writerow(values)


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_text(text):
    return "".join(_LATEX_SPECIALS.get(char, char) for char in str(text))


def latex(tables):
    """One tabular per table (booktabs); published rows in italics."""
    blocks = []
    for table in tables:
        columns = "".join("r" if any(isinstance(row[i], Cell) for row in table.rows) else "l"
                          for i in range(len(table.header)))
        lines = [f"% {table.title}", f"\\begin{{tabular}}{{{columns}}}", "\\toprule",
                 " & ".join(_latex_text(name) for name in table.header) + " \\\\", "\\midrule"]
        for row in table.rows:
            cells = [_number(v, table.show_spread, "$\\pm$", "$^\\dagger$") if isinstance(v, Cell) else _latex_text(v)
                     for v in row]
            if PUBLISHED in row:
                cells = [f"\\textit{{{cell}}}" if cell else cell for cell in cells]
            lines.append(" & ".join(cells) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def plot_base2new(table, path):
    """Left: base vs novel accuracy of our runs (one point per method and dataset). Right: HM per dataset."""
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
    handles, labels = scatter.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    scatter.legend(unique.values(), unique.keys(), fontsize=8)
    scatter.set_xlabel("base accuracy (%)")
    scatter.set_ylabel("novel accuracy (%)")
    scatter.set_title("Base vs novel (mean over seeds; x: incomplete)")

    width = 0.8 / len(methods)
    for index, method in enumerate(methods):
        hms = {dataset: hm.mean for dataset, other, _, _, hm in points if other == method}
        positions = [d + (index - (len(methods) - 1) / 2) * width for d in range(len(datasets))]
        heights = [hms.get(dataset, 0.0) for dataset in datasets]
        bars.bar(positions, heights, width, color=colors[method], label=label[method])
    bars.set_xticks(range(len(datasets)))
    bars.set_xticklabels(datasets, rotation=30, ha="right", fontsize=8)
    bars.set_ylabel("HM (%)")
    bars.set_title("Harmonic mean per dataset")
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
