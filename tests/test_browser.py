"""The page in a real browser: Playwright driving Debian's Chromium, headless, against a live
server on 127.0.0.1. `.ci/run` installs Chromium; the tests skip only where it is absent."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pictures import digit_png, number_png
from PIL import Image

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("DIGITNET_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip

pytestmark = pytest.mark.slow  # a real browser: seconds a test


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from digitnet.web.app import create_app
    from digitnet.web.catalog import load_catalog

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(load_catalog()), host="127.0.0.1", port=port,
                            log_level="warning")  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]")
    yield page
    context.close()
    assert errors == [], errors


def draw_ink(page, digit: np.ndarray):
    """Mouse strokes along the ink of an MNIST digit (28, 28): one stroke per run of inked
    pixels in each row, scaled onto the canvas."""
    box = page.locator("#canvas").bounding_box()
    cell = box["width"] / 28
    for r, row in enumerate(digit > 100):
        c = 0
        while c < 28:
            if row[c]:
                start = c
                while c < 28 and row[c]:
                    c += 1
                y = box["y"] + (r + 0.5) * cell
                page.mouse.move(box["x"] + (start + 0.5) * cell, y)
                page.mouse.down()
                page.mouse.move(box["x"] + (c - 0.5) * cell, y, steps=3)
                page.mouse.up()
            c += 1


def verdict(page) -> str:
    page.wait_for_timeout(50)
    page.wait_for_selector("body[data-busy=false]")
    return page.locator("#verdict").get_attribute("data-digit")


def test_drawing_a_digit_shows_the_right_verdict_then_clear(page, mnist, tmp_path):
    _, (x_test, y_test) = mnist
    draw_ink(page, x_test[0])
    assert verdict(page) == str(y_test[0])
    assert page.locator("#bars li").count() == 10
    assert page.locator("#bars li.best .label").inner_text() == str(y_test[0])
    assert page.locator("#network canvas.maps").count() == 3  # the CNN's feature maps
    page.check("#show-why")
    page.screenshot(path=str(tmp_path / "drawn.png"), full_page=True)
    assert (tmp_path / "drawn.png").stat().st_size > 10_000

    page.click("#clear")
    assert verdict(page) == "empty" and shows_no_digit(page)
    assert page.locator("#verdict").inner_text().split() == ["?", "draw", "something"]


def shows_no_digit(page) -> bool:
    """Whether the single-digit views are empty: no input, no explanation, no network."""
    blank = "(id) => !document.getElementById(id).getContext('2d')" \
            ".getImageData(0, 0, 28, 28).data.some((v) => v)"  # fmt: skip
    return (page.evaluate(blank, "seen") and page.evaluate(blank, "why")
            and page.locator("#network > *").count() == 0)  # fmt: skip


def test_undo_removes_the_last_stroke(page):
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.8 * box["height"], steps=8)
    page.mouse.up()
    assert verdict(page) == "1"
    page.click("#undo")  # the only stroke: back to the empty page, not "no ink"
    assert verdict(page) == "empty" and shows_no_digit(page)


def test_lifting_the_pen_sends_the_whole_drawing_at_once(page):
    """The drawing is sent from the pen's lifting itself, not when the browser next idles:
    with canvas.toBlob the verdict came ~1 s after the pen lifted in 25 of 28 strokes
    (headed Chromium under Xvfb), and could answer strokes drawn before the last ones."""
    page.evaluate("""() => {
        window.asked = 0;
        const fetchNow = window.fetch;
        window.fetch = (path, options) => {
            if (String(path).startsWith("/api/predict")) window.asked += 1;
            return fetchNow(path, options);
        };
        window.addEventListener("pointerup", () => { window.askedBefore = window.asked; }, true);
        window.addEventListener("pointerup",
                                () => { window.askedOnLift = window.asked - window.askedBefore; });
    }""")  # fmt: skip
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.8 * box["height"], steps=8)
    page.wait_for_timeout(300)  # the answers to the stroke while it was drawn are in
    page.wait_for_selector("body[data-busy=false]")
    page.mouse.up()
    assert page.evaluate("window.askedOnLift") == 1
    assert verdict(page) == "1"


def test_switching_models_shows_the_tutorial_network(page, mnist):
    _, (x_test, y_test) = mnist
    draw_ink(page, x_test[1])
    assert verdict(page) == str(y_test[1])
    page.select_option("#model", "tutorial")
    assert verdict(page) == str(y_test[1])
    assert page.locator("canvas.net").count() == 1  # neurons and connections, 784-16-16-10
    assert page.locator("#model-link").get_attribute("href") == "/model?model=tutorial"


def test_the_chosen_model_stays_chosen_across_pages_and_reloads(page, server):
    page.select_option("#model", "tutorial")
    page.click("#model-link")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert page.locator("#model").input_value() == "tutorial"
    page.select_option("#model", "cnn")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.click("text=draw a digit")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#model").input_value() == "cnn"
    page.select_option("#model", "tutorial")
    page.goto(server + "/")  # a reload, without the address naming it
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#model").input_value() == "tutorial"


@pytest.mark.parametrize("path", ["/", "/model"])
def test_a_link_to_a_model_not_served_says_so(page, server, path):
    """/?model=nosuch and /model?model=nosuch showed cnn without a word."""
    page.goto(server + path + "?model=nosuch")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    notice = page.locator("#model-notice")
    assert notice.inner_text() == "no model named “nosuch” here: showing cnn"
    page.select_option("#model", "tutorial")
    assert notice.count() == 0  # a model chosen: nothing left to say


def test_uploading_a_photo_and_reading_a_number(page, mnist, tmp_path):
    _, (x_test, y_test) = mnist
    photo = tmp_path / "digit.png"
    photo.write_bytes(digit_png(x_test[2], size=400))
    page.set_input_files("#upload", str(photo))
    assert verdict(page) == str(y_test[2])

    number = tmp_path / "number.png"
    number.write_bytes(number_png([x_test[i] for i in (3, 4, 5)]))
    page.set_input_files("#upload", str(number))  # in digit mode: a hint to read it as a number
    verdict(page)
    assert "Several digits?" in page.locator("#status").inner_text()
    page.check("input[name=mode][value=number]")
    page.set_input_files("#upload", str(number))
    verdict(page)
    expected = "".join(str(y_test[i]) for i in (3, 4, 5))
    assert page.locator("#reading-text").inner_text() == expected
    assert page.locator("#verdict .note").inner_text() == "3 digits"
    assert shows_no_digit(page)  # not the digit uploaded before
    # one digit's input and explanation give way to a word on where the digits are shown
    assert page.locator("#sees-hint").is_visible() and not page.locator("#seen").is_visible()
    # and the page's words are a number's: nothing there says "draw a digit" or does nothing
    assert page.locator("#drawing h2").inner_text() == "Write a number"
    assert page.locator("#show-why").is_disabled()
    assert "one digit" in page.locator("#work-hint").inner_text()
    page.check("input[name=mode][value=digit]")
    verdict(page)
    assert page.locator("#seen").is_visible() and not page.locator("#sees-hint").is_visible()
    assert page.locator("#drawing h2").inner_text() == "Draw a digit"
    assert page.locator("#show-why").is_enabled()


def test_a_page_with_nothing_written_reads_nothing_and_says_why_once(page, tmp_path):
    rows = np.arange(300)[:, None] * np.ones((1, 400))
    ruled = tmp_path / "ruled.png"
    Image.fromarray(np.where(rows % 30 < 2, 120, 235).astype(np.uint8)).save(ruled)
    page.check("input[name=mode][value=number]")
    assert page.locator("#status").inner_text().startswith("Write numbers")  # not "Draw with"
    page.set_input_files("#upload", str(ruled))
    assert verdict(page) == "none"
    assert page.locator("#reading-text").inner_text() == "nothing"
    assert page.locator("#verdict").inner_text().count("only the paper's lines") == 1


def test_a_file_that_is_not_an_image_gets_the_servers_reason(page, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    page.set_input_files("#upload", str(notes))
    verdict(page)
    assert "not an image" in page.locator("#status").inner_text()
    assert "not an image" not in page.locator("#verdict").inner_text()  # said once
    assert shows_no_digit(page)


def test_an_error_after_a_digit_leaves_nothing_of_that_digit(page, mnist, tmp_path):
    _, (x_test, y_test) = mnist
    draw_ink(page, x_test[4])
    assert verdict(page) == str(y_test[4]) and not shows_no_digit(page)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    page.set_input_files("#upload", str(notes))
    assert verdict(page) == "none" and shows_no_digit(page)


def test_phone_width_has_no_sideways_scrolling(browser, server, mnist):
    context = browser.new_context(viewport={"width": 375, "height": 740}, has_touch=True)
    page = context.new_page()
    for path in ("/learn", "/", "/model?name=tutorial"):
        page.goto(server + path)
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    # The pictures with text are drawn at the size they are shown: their labels keep 13 px.
    drawn_at_shown_size = """(selector) => { const c = document.querySelector(selector);
        return Math.abs(c.getBoundingClientRect().width * devicePixelRatio - c.width) < 2; }"""
    assert page.evaluate(drawn_at_shown_size, "#curves")
    page.goto(server + "/?model=tutorial")
    page.wait_for_selector("body[data-ready=true]")
    draw_ink(page, mnist[1][0][0])
    verdict(page)
    assert page.evaluate(drawn_at_shown_size, "canvas.net")
    context.close()


def test_model_page_shows_accuracy_confusion_and_mistakes(page, server):
    page.goto(server + "/model?name=tutorial")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert "93.16%" in page.locator("#accuracy").inner_text()
    assert page.locator("#confusion tr").count() == 11
    assert page.locator("#weights img").count() == 16
    assert page.locator("#mistakes figure").count() == 24


def test_the_model_page_says_how_it_was_trained_without_the_trainers_paths(page, server):
    """The command's --out is the file's name, not the trainer's directory (the bundled cnn
    showed "--out /tmp/s13/cnn_written.npz"); a training of a fraction of a second is not
    "in 0 s"."""
    page.goto(server + "/model?model=cnn")
    page.wait_for_function("document.getElementById('training').textContent.length > 20")
    shown = page.locator("#training").inner_text()
    assert "--out cnn_written.npz" in shown and "/tmp/" not in shown
    line = page.evaluate("trainingLine({command: 'digitnet train --out /home/me/m.npz --epochs 1',"
                         " training_seconds: 0.4})")  # fmt: skip
    assert line == "Trained with: digitnet train --out m.npz --epochs 1; in 0.4 s"


def test_a_network_trained_on_the_learn_page_answers_a_drawing(page, server, mnist):
    """The tutorial's network on 6,000 digits, 2 epochs, one digit a step (~1.5 s): the curves
    and the first layer's pictures change as it learns (a report every 100 steps, 60 an
    epoch; at least 10 seen live: the page may connect after the first few, which it then gets
    as points only); the scores come; "Draw on it" opens the main page with the new model."""
    page.goto(server + "/learn")
    page.wait_for_selector("body[data-ready=true]")
    for field, value in (("samples", "6000"), ("epochs", "2"), ("batch_size", "1")):
        page.fill(f"input[name={field}]", value)
    page.click("#train")
    page.wait_for_selector("body[data-trained]", timeout=60_000)
    assert int(page.locator("#pictures").get_attribute("data-updates")) >= 10
    assert page.locator("#pictures canvas").count() == 16
    reports, epochs = 2 * 60, 2  # each: a point for the loss and one for the accuracy
    assert int(page.locator("#curves").get_attribute("data-points")) == 2 * reports + 2 * epochs
    assert page.locator("#confusion tr").count() == 11
    assert page.locator("#speed").inner_text().startswith("Ended at epoch 2 of 2")  # no time left
    name = page.locator("body").get_attribute("data-trained")
    assert name in page.locator("#verdict-line").inner_text()
    page.click("#try")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#model").input_value() == name
    _, (x_test, _) = mnist
    draw_ink(page, x_test[0])
    assert verdict(page) not in ("empty", "none")
    assert page.locator("canvas.net").count() == 1  # its own 784-16-16-10 picture
    xy = page.evaluate("() => document.querySelector('canvas.net').neurons[0][3]")
    page.locator("canvas.net").click(position={"x": xy[0], "y": xy[1]})  # open one of its neurons
    page.wait_for_selector(f"#neuron[data-open='{name}/0/3'] canvas.weight-picture")


def test_stop_on_the_learn_page_keeps_the_weights_it_reached(page, server):
    page.goto(server + "/learn")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("input[name=hidden]", "512,512,512")
    page.fill("input[name=batch_size]", "1")
    page.fill("input[name=epochs]", "20")  # an hour's training
    page.click("#train")
    page.wait_for_function("Number(document.getElementById('pictures').dataset.updates) >= 2")
    page.click("#stop")
    page.wait_for_selector("body[data-trained]", timeout=30_000)
    assert "stopped early" in page.locator("#state").inner_text()
    assert page.locator("#train").is_enabled() and page.locator("#stop").is_disabled()
    # where it stopped, not a time left; the test points where it stopped, not at epoch 1
    assert page.locator("#speed").inner_text().startswith("Stopped at epoch 1 of 20")
    tested, reached = page.evaluate(
        "() => [training.lines[2].points.map((p) => p[0]), training.reached]"
    )
    assert tested and all(at <= reached for at in tested) and reached < 1


def ringed(page) -> list[tuple[int, int]]:
    """The neurons of the perceptron diagram with the open neuron's amber ring around them
    (read from the canvas's pixels just outside each neuron, at four points of the compass)."""
    return [tuple(hit) for hit in page.evaluate("""() => {
        const net = document.querySelector("canvas.net"), ratio = net.width / net.clientWidth;
        const pixels = net.getContext("2d");
        const amber = (x, y) => {
            const at = [Math.round(x * ratio), Math.round(y * ratio)];
            const [r, g, b] = pixels.getImageData(...at, 1, 1).data;
            return r > 200 && g > 120 && g < 190 && b < 80;
        };
        const d = net.radius + 4, hits = [];
        net.neurons.forEach((layer, i) => layer.forEach(([x, y], k) => {
            const around = [[d, 0], [-d, 0], [0, d], [0, -d]];
            if (around.every(([dx, dy]) => amber(x + dx, y + dy))) hits.push([i, k]);
        }));
        return hits;
    }""")]  # fmt: skip


def test_a_neuron_opens_with_its_weighted_sum(page, mnist):
    """Clicking a neuron of the tutorial network shows its weights and its weighted sum for the
    drawing: z computed on the page from the neuron's weights and the layer below, through its
    activation (or the softmax), is what the network's own forward pass gave that neuron."""
    page.select_option("#model", "tutorial")
    _, (x_test, _) = mnist
    draw_ink(page, x_test[0])
    assert verdict(page) == "7"
    for layer, unit in ((0, 4), (1, 11), (2, 7)):
        xy = page.evaluate(f"() => document.querySelector('canvas.net').neurons[{layer}][{unit}]")
        page.locator("canvas.net").click(position={"x": xy[0], "y": xy[1]})
        page.wait_for_selector(f"#neuron[data-open='tutorial/{layer}/{unit}']")
        assert ringed(page) == [(layer, unit)]  # the diagram shows which neuron is open
        shown = float(page.locator("#neuron [data-activation]").get_attribute("data-activation"))
        computed = page.evaluate(f"() => last.answer.layers[{layer}].values[{unit}]")
        assert shown == pytest.approx(computed, abs=1e-3)  # the answer's values are rounded
        picture = "canvas.weight-picture" if layer == 0 else "canvas.bars-chart"
        assert page.locator(f"#neuron {picture}").count() == 1
        assert page.locator("#neuron ol li").count() >= 2
    assert "softmax" in page.locator("#neuron").inner_text()
    # the verdict's digit: its softmax is the raw one; the verdict's confidence, said below it,
    # is the calibrated one (the two disagreed on the page without a word: 57.2 % and 0.9943)
    calibrated = float(page.locator("#calibrated").get_attribute("data-confidence"))
    assert calibrated == pytest.approx(page.evaluate("() => last.answer.confidence"), abs=1e-3)
    page.click("#clear")
    draw_ink(page, x_test[1])  # another drawing: the neuron stays open, with its new sum
    assert verdict(page) == "2"
    page.wait_for_selector("#neuron[data-open='tutorial/2/7']")
    assert ringed(page) == [(2, 7)]


@pytest.mark.parametrize("z", [-1.5, -0.6, -0.3, 0.5, 2.0])
def test_the_activation_plots_label_keeps_off_its_axis(page, z):
    """The "z = ..." beside the drawing's point on a neuron's ReLU: never across the vertical
    axis (it crossed it for z = -0.60). Dark pixels of the label's band, at the axis."""
    dark = page.evaluate("""(z) => {
        const plot = activationPlot((v) => Math.max(0, v), z, "relu");
        const pixels = plot.getContext("2d"), span = Math.max(4, 1.25 * Math.abs(z));
        const axis = Math.round(0.5 * (plot.width - 10) + 5);
        const point = plot.height - 8 - (Math.max(0, z) / Math.max(1, span)) * (plot.height - 16);
        const band = pixels.getImageData(axis - 1, Math.round(point) - 16, 3, 12).data;
        let dark = 0;
        for (let k = 0; k < band.length; k += 4) if (band[k + 3] > 128 && band[k] < 150) dark += 1;
        return dark;
    }""", z)  # fmt: skip
    assert dark == 0


def test_the_api_docs_work_offline(browser, server):
    """/docs draws Swagger UI from files the package serves: nothing is fetched elsewhere."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    elsewhere = []

    def only_this_server(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=15000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    context.close()
    assert elsewhere == [] and "/api/predict" in paths and "/api/read" in paths
