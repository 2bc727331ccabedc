"""An evaluation report (``evaluate.evaluate_model``) as text or Markdown tables."""

from __future__ import annotations

from sketchgen.evaluate import below_half, judged


def table(header: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    """Rows as an aligned text table (first column left, the rest right) or a Markdown table."""
    if markdown:
        lines = [header, [":--"] + ["--:"] * (len(header) - 1), *rows]
        return "\n".join("| " + " | ".join(r) + " |" for r in lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in [header, *rows])


def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def number(x: float | None, digits: int = 1) -> str:
    """``x`` to ``digits`` places, or to one significant digit where those would show a number that is not 0 as 0
    (an FID of 0.03 read as 0.0)."""
    if x is None:
        return "-"
    return f"{x:.1g}" if 0 < abs(x) < 0.5 * 10**-digits else f"{x:.{digits}f}"


def pair(shape: dict, key: str) -> str:
    """'generated / real' means of one shape statistic."""
    return f"{number(shape[key]['generated']['mean'])} / {number(shape[key]['real']['mean'])}"


def format_report(report: dict, markdown: bool = False) -> str:
    """The report as a table: one row per class and an overall row (with reconstructions and loss terms where
    the model has them)."""
    entries = [*report["classes"].items(), ("overall", report["overall"])]
    redrawn = "reconstruction" in report["overall"]
    terms = list(report["overall"].get("test_terms", {}))
    header = ["class", "recognised", *(["reconstructions recognised"] if redrawn else []), "ceiling", "real test n",
              "test loss", *terms, "strokes gen/real", "points gen/real", "length gen/real"]
    rows = [[name, percent(e["recognisability"]), *([percent(e["reconstruction"])] if redrawn else []),
             percent(e["ceiling"]), str(e["n_real_test"]), number(e["test_loss"], 3),
             *(number(e["test_terms"][t], 3) for t in terms),
             pair(e["shape"], "strokes"), pair(e["shape"], "points"), pair(e["shape"], "length")]
            for name, e in entries]
    title = (f"{report['model']} model{' ' + report['checkpoint'] if report['checkpoint'] else ''}: "
             f"{report['n_per_class']} drawings per class at temperature {report['temperature']}, seed {report['seed']}; "
             f"test loss is {report['loss']}{' (' + ' + '.join(terms) + ')' if terms else ''}; "
             + ("reconstructions: each real test drawing redrawn from its latent's mean; " if redrawn else "")
             + "overall = mean over classes")
    return (title + "\n\n" + table(header, rows, markdown) + "\n\n" + against_ceiling(report) + "\n\n"
            + format_against_real(report, markdown))


def against_ceiling(report: dict) -> str:
    """One line: the recognised share over the ceiling, both means over the same (judged) classes; the classes below
    half of their ceilings, and those that cannot be judged."""
    classes = report["classes"]
    fair = judged(classes)
    share = (f"{sum(classes[c]['recognisability'] for c in fair) / sum(classes[c]['ceiling'] for c in fair):.2f}"
             if fair else "-")
    below = below_half(classes)
    unjudged = [c for c in classes if c not in fair]
    return (f"Overall, its drawings are recognised {share} times as often as the real test drawings"
            + (f" (over the {len(fair)} judged classes)" if unjudged and fair else "")
            + f"; classes below half of their real drawings' rate: {', '.join(below) if below else 'none'}"
            + (f"; not judged (no real test drawing, or none recognised): {', '.join(unjudged)}" if unjudged else "")
            + ".")


def format_against_real(report: dict, markdown: bool = False) -> str:
    """against_real's numbers as a second table, the pooled FID as a last row."""
    header = ["class", "FID", "floor", "real n", "precision", "recall", "k", "nearest train gen/test",
              "closer than test"]
    rows = []
    for name, e in [*report["classes"].items(), ("overall", report["overall"])]:
        fid, pr, near = e["fid"], e["precision_recall"], e["copying"]
        ks = pr.get("ks", [pr["k"]])  # overall: the k's the classes used
        rows.append([name, number(fid["value"]), number(fid["floor"]), str(fid["n_real"]), percent(pr["precision"]),
                     percent(pr["recall"]), "/".join(map(str, ks)) or "-",
                     f"{number(near['nearest_train'], 2)} / {number(near['test_nearest_train'], 2)}",
                     percent(near["closer_than_test"])])
    fid = report["overall"]["fid"]
    rows.append(["pooled", number(fid["pooled"]), number(fid["pooled_floor"]), str(fid["n_real"])] + ["-"] * 5)
    title = ("Against the real test drawings (real n: how many; floor: one half of them against the other; overall = "
             "mean over classes, pooled = all classes together, each weighing the same).\n"
             "FID, precision and recall (k nearest neighbours) in the classifier's features. Copying: distance between "
             "28x28 renderings and the nearest training drawing, generated / real test;\ncloser than test = the share "
             "of generated drawings nearer a training drawing than the median test drawing is (real drawings: 50%).")
    return title + "\n\n" + table(header, rows, markdown)
