"""The page in a real headless browser: Debian's chromium, driven by Playwright, against `sketchgen serve`.

The server runs as the real command on a free loopback port. The test picks a
class, presses Draw and waits for the animation, then draws the start of a
drawing with the mouse, presses "Finish it" and checks the request, the reply
and the canvas; it downloads the SVG and PNG and takes a screenshot. Then the
page of two checkpoints that know the same classes: each class once per model,
each drawn by its own.
Skips, saying why, where chromium or the playwright package is missing
(`make test` installs both). To make the README's picture from a better model:
``SKETCHGEN_SERVE_CHECKPOINT=runs/x/best.pt SKETCHGEN_SCREENSHOT=docs/screenshot.png pytest tests/test_browser.py``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from sketchgen.cli import SEED_CLASSES

sync_api = pytest.importorskip("playwright.sync_api", reason="no playwright: pip install -e '.[test]'")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("no chromium: apt-get install -y chromium (make test does this as root)", allow_module_level=True)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = "body[data-state=idle]"
# Dark pixels on the page's canvas: the ink, not the white paper or the red pen dot.
COUNT_INK = """() => {
  const c = document.getElementById("canvas");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++;
  return n;
}"""
# What the canvas shows, to tell one picture from another.
PIXELS = "() => document.getElementById('canvas').toDataURL()"


@contextlib.contextmanager
def serving(*checkpoints):
    """`sketchgen serve` of the checkpoints on a free loopback port: its URL."""
    flags = [a for c in checkpoints for a in ("--checkpoint", str(c))]
    proc = subprocess.Popen([sys.executable, "-m", "sketchgen", "serve", *flags, "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    line = proc.stdout.readline()
    assert " at http://127.0.0.1:" in line, f"the server did not start: {line!r}"
    yield line.split(" at ")[1].split()[0]
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def url(request):
    with serving(os.environ.get("SKETCHGEN_SERVE_CHECKPOINT") or request.getfixturevalue("tiny_models")["mdn"]) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def open_page(browser, url):
    context = browser.new_context(viewport={"width": 960, "height": 760}, accept_downloads=True)
    page = context.new_page()
    page.problems = []  # script errors, refused requests, anything fetched from elsewhere
    page.on("pageerror", lambda e: page.problems.append(f"script error: {e}"))
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("request", lambda r: r.url.startswith((url, "blob:", "data:"))
            or page.problems.append(f"request elsewhere: {r.url}"))
    page.goto(url)
    page.wait_for_selector(IDLE)
    return page


@pytest.fixture(scope="module")
def page(browser, url):
    page = open_page(browser, url)
    yield page
    page.context.close()


def ink(page) -> int:
    return page.evaluate(COUNT_INK)


def test_draw_animates_a_drawing_of_the_chosen_class(page):
    classes = page.eval_on_selector_all("#class option", "options => options.map(o => o.textContent)")
    assert "eye" in classes
    page.select_option("#class", "eye")
    assert ink(page) == 0
    with page.expect_response("**/api/sample") as sampled:
        page.click("#draw")
    assert page.get_attribute("body", "data-state") == "busy"  # animating, the buttons disabled
    assert page.is_disabled("#finish")
    reply = sampled.value
    assert reply.status == 200 and reply.request.post_data_json["class"] == "eye"
    page.wait_for_selector(IDLE, timeout=30_000)
    assert ink(page) > 300
    assert page.inner_text("#status").startswith("An eye: seed 0")
    assert not page.problems


def test_the_model_finishes_what_the_user_starts(page, tmp_path):
    page.select_option("#class", "eye")  # the page is shared by the module's tests: choose, whichever ran first
    page.click("#clear")
    assert ink(page) == 0
    box = page.locator("#canvas").bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] / 4
    page.mouse.move(cx - r, cy)
    page.mouse.down()
    for i in range(1, 31):  # an upper eyelid: an arc over the middle of the canvas
        a = math.pi + i / 30 * math.pi
        page.mouse.move(cx + r * math.cos(a), cy + 0.6 * r * math.sin(a))
    page.mouse.up()
    mine = ink(page)
    assert mine > 100

    # The tiny model sometimes thinks one stroke is a whole eye; a user would press again with the next seed.
    for seed in range(5):
        page.fill("#seed", str(seed))
        with page.expect_response("**/api/complete") as completed:
            page.click("#finish")
        page.wait_for_selector(IDLE, timeout=30_000)
        sent, reply = completed.value.request.post_data_json, completed.value.json()
        assert completed.value.status == 200 and sent["class"] == "eye" and sent["seed"] == seed
        (xs, ys), = sent["strokes"]  # one stroke, in the 0-255 frame: the canvas's middle half
        assert len(xs) == 31 and abs(xs[0] - 255 / 4) < 2 and abs(xs[-1] - 255 * 3 / 4) < 2 and abs(ys[0] - 127.5) < 2
        assert reply["n_prefix"] == 1
        if len(reply["strokes"]) > 1:
            break
    assert len(reply["strokes"]) > 1, "the model added nothing for any of 5 seeds"
    assert ink(page) > mine
    assert "finished with" in page.inner_text("#status")
    assert not page.problems

    shot = tmp_path / "page.png"
    page.screenshot(path=shot)
    assert Image.open(shot).size == (960, 760)
    if os.environ.get("SKETCHGEN_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["SKETCHGEN_SCREENSHOT"])

    with page.expect_download() as svg:
        page.click("#svg")
    assert svg.value.suggested_filename == f"sketchgen-eye-{seed}.svg"
    paths = ET.parse(svg.value.path()).getroot().iter("{http://www.w3.org/2000/svg}path")
    assert len(list(paths)) == len(reply["strokes"])  # the user's stroke and the model's, one path each
    with page.expect_download() as png:
        page.click("#png")
    picture = Image.open(png.value.path())
    assert picture.size == (512, 512) and picture.convert("L").getextrema()[0] < 64


@pytest.fixture(scope="module")
def two_models(browser, tiny_models):
    """The page of the tiny mdn and the tiny seed model: both know the 5 seed classes."""
    with serving(tiny_models["mdn"], tiny_models["seed"]) as url:
        page = open_page(browser, url)
        yield page
        page.context.close()


def test_two_checkpoints_offer_each_class_once_per_model_each_drawn_by_its_own(two_models, tiny_models):
    page = two_models
    mdn, seed = (f"{tiny_models[k].parent.name}/best.pt" for k in ("mdn", "seed"))
    labels = page.eval_on_selector_all("#class option", "options => options.map(o => o.textContent)")
    assert labels == [f"{c} ({m})" for m in (mdn, seed) for c in SEED_CLASSES]
    assert page.inner_text("#model").endswith(f"{mdn} (1 of 2 models)") and page.is_enabled("#temperature")

    page.select_option("#class", f"eye ({seed})")
    assert page.inner_text("#model").startswith("seed model") and page.is_disabled("#temperature")
    assert "not used by the seed model" in page.inner_text("#temperature-value")
    with page.expect_response("**/api/sample") as sampled:
        page.click("#draw")
    page.wait_for_selector(IDLE, timeout=30_000)
    assert sampled.value.status == 200
    assert sampled.value.request.post_data_json | {"temperature": 0} == {"class": "eye", "model": seed, "seed": 0,
                                                                        "temperature": 0}
    assert sampled.value.json()["model"] == seed and ink(page) > 100
    assert page.inner_text("#status").startswith(f"An eye ({seed}): seed 0")

    page.select_option("#class", f"circle ({mdn})")
    assert page.is_enabled("#temperature")
    with page.expect_response("**/api/sample") as sampled:
        page.click("#draw")
    page.wait_for_selector(IDLE, timeout=30_000)
    assert sampled.value.request.post_data_json["model"] == mdn and sampled.value.json()["model"] == mdn
    assert not page.problems


def test_a_class_named_as_another_models_label_is_drawn_by_its_own_model(browser, tiny_models, tmp_path):
    """Each option's label was also its key: a class of another model named "eye (SEED)" took the place of the seed
    model's eye, so the option labelled as the seed model's eye drew the other model's class (an audit's find)."""
    import torch

    seed = f"{tiny_models['seed'].parent.name}/best.pt"
    ckpt = torch.load(tiny_models["mdn"], weights_only=True)
    ckpt["classes"] = [f"eye ({seed})" if c == "circle" else c for c in ckpt["classes"]]
    (tmp_path / "other").mkdir()
    torch.save(ckpt, tmp_path / "other" / "best.pt")
    with serving(tiny_models["seed"], tmp_path / "other" / "best.pt") as url:
        page = open_page(browser, url)
        labels = page.eval_on_selector_all("#class option", "options => options.map(o => o.textContent)")
        assert labels.count(f"eye ({seed})") == 2
        for i, model, cls in ((labels.index(f"eye ({seed})"), seed, "eye"),
                              (len(labels) - 1 - labels[::-1].index(f"eye ({seed})"), "other/best.pt", f"eye ({seed})")):
            page.select_option("#class", index=i)
            with page.expect_response("**/api/sample") as sampled:
                page.click("#draw")
            page.wait_for_selector(IDLE, timeout=30_000)
            assert sampled.value.status == 200
            assert (sampled.value.request.post_data_json["model"], sampled.value.request.post_data_json["class"]) == \
                (model, cls)
        assert not page.problems
        page.context.close()


@pytest.fixture(scope="module")
def vae_page(browser, tiny_models):
    """The page of conftest's tiny vae, which knows the 5 seed classes."""
    with serving(tiny_models["vae"]) as url:
        page = open_page(browser, url)
        yield page
        page.context.close()


def test_a_vae_redraws_the_canvas_and_morphs_one_drawing_into_another(vae_page):
    page = vae_page
    assert page.is_visible("#redraw") and page.is_visible("#morph-to")
    box = page.locator("#canvas").bounding_box()
    x0, y0, side = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3, box["width"] * 0.4

    def draw_by_hand(corners):
        page.click("#clear")
        page.mouse.move(x0, y0)
        page.mouse.down()
        for x, y in corners:
            page.mouse.move(x0 + x * side, y0 + y * side, steps=8)
        page.mouse.up()

    page.select_option("#class", "triangle")
    draw_by_hand([(1, 0), (0.5, 1), (0, 0)])
    page.click("#morph-from")
    assert "Kept this triangle as the start" in page.inner_text("#status")

    page.select_option("#class", "square")
    draw_by_hand([(1, 0), (1, 1), (0, 1), (0, 0)])
    by_hand = page.evaluate(PIXELS)
    with page.expect_response("**/api/reconstruct") as redrawn:
        page.click("#redraw")
    page.wait_for_selector(IDLE, timeout=30_000)
    sent, reply = redrawn.value.request.post_data_json, redrawn.value.json()
    assert redrawn.value.status == 200 and sent["class"] == "square" and len(sent["strokes"]) == 1
    assert (ink(page) > 0) == bool(reply["strokes"]) and page.evaluate(PIXELS) != by_hand  # the reply, not the square
    assert page.inner_text("#status").startswith(f"The model's own version of that square: seed 0, "
                                                 f"{len(reply['strokes'])} stroke")

    redrawn_pixels = page.evaluate(PIXELS)
    with page.expect_response("**/api/interpolate") as morphed:
        page.click("#morph-to")
    page.wait_for_selector(IDLE, timeout=30_000)
    sent, reply = morphed.value.request.post_data_json, morphed.value.json()
    assert morphed.value.status == 200 and (sent["class"], sent["to_class"]) == ("triangle", "square")
    assert sent["to_strokes"] == [[[round(v, 1) for v in xs], [round(v, 1) for v in ys]]
                                  for xs, ys in redrawn.value.json()["strokes"]]  # what was on the canvas
    assert len(reply["drawings"]) == 9 and (ink(page) > 0) == bool(reply["drawings"][-1]["strokes"])
    assert page.evaluate(PIXELS) != redrawn_pixels or not reply["drawings"][-1]["strokes"]  # the morph's last drawing
    assert page.inner_text("#status").startswith("A triangle into a square: 9 drawings")
    assert not page.problems


def test_a_model_without_a_latent_offers_no_redraw(page):
    assert page.is_hidden("#latent")
