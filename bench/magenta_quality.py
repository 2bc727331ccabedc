"""How recognisably @magenta/sketch draws a sketchgen model exported to it, beside sketchgen drawing the same model.

Exports every class of a checkpoint (`sketchgen export --format magenta`), has the real library draw --n
drawings of each in Node exactly as a page does (`getPDF(state, T)`, the library's own softened discrete
temperature; tests/node/sketchrnn.js, the script tests/test_magenta.py runs), and judges them with a
classifier beside `sketchgen sample`'s drawings of the same model at the same temperature.

    .venv/bin/python bench/magenta_quality.py --checkpoint runs/quality/set5/mdn/best.pt \\
        --classifier runs/quality/set5/judge.pt          # a few minutes; needs node and @magenta/sketch
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from benchlib import machine

from sketchgen import classifier as C
from sketchgen import cli, models, strokes
from sketchgen import report as R
from sketchgen.cli.values import POSITIVE
from sketchgen.sample import generate

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = Path.home() / ".cache" / "sketchgen" / "npm" / "magenta-sketch-0.2.0"  # where tests/test_magenta.py puts it


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="an mdn checkpoint")
    p.add_argument("--classifier", required=True, help="a classifier of its classes (sketchgen classifier train)")
    p.add_argument("--n", type=POSITIVE, default=100, help="drawings per class on each side (default 100)")
    p.add_argument("--temperature", type=float, default=0.4, help="sampling temperature (default 0.4)")
    p.add_argument("--library", default=str(LIBRARY), help=f"folder whose node_modules holds @magenta/sketch 0.2.0 "
                                                             f"(default {LIBRARY}; `make test` installs it)")
    args = p.parse_args()
    torch.set_num_threads(1)
    net, ckpt = models.load(args.checkpoint)
    clf, clf_classes = C.load_classifier(args.classifier)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        jobs = []
        for name in ckpt["classes"]:
            out = Path(work) / f"{len(jobs)}.gen.json"
            if cli.main(["export", "--checkpoint", args.checkpoint, "--format", "magenta", "--class", name,
                         "--out", str(out)]) != 0:
                raise SystemExit(f"export of {name} failed")
            jobs.append({"model": str(out), "temperature": args.temperature, "softmax_temperature": None,
                         "samples": args.n, "max_len": json.loads(out.read_text())[0]["max_seq_len"]})
        request, result = Path(work) / "request.json", Path(work) / "result.json"
        request.write_text(json.dumps({"seed": 1, "jobs": jobs}))
        subprocess.run(["node", str(ROOT / "tests" / "node" / "sketchrnn.js"), args.library, str(request),
                        str(result)], check=True)
        drawn = json.loads(result.read_text())["results"]
    for label, (name, r) in enumerate(zip(ckpt["classes"], drawn)):
        theirs = [strokes.quickdraw_strokes(strokes.stroke5_to_stroke3(np.array(d))) for d in r["drawings"]]
        ours = [strokes.quickdraw_strokes(s) for s in generate(net, [label] * args.n, args.temperature, seed=0)]
        target = [clf_classes.index(name)] * args.n
        rows.append([name, C.recognisability(clf, theirs, target), C.recognisability(clf, ours, target)])
    rows.append(["**overall**", np.mean([r[1] for r in rows]), np.mean([r[2] for r in rows])])
    print(f"Machine: {machine()}. {args.n} drawings per class at temperature {args.temperature}.\n")
    print(R.table(["class", "@magenta/sketch", "sketchgen"], [[r[0], R.percent(r[1]), R.percent(r[2])] for r in rows],
                  markdown=True))


if __name__ == "__main__":
    main()
