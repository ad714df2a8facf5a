"""A real browser (Debian Chromium driven by Playwright) through the whole studio.

Uploads an example file, trains the embedded model for a few steps, waits for the metrics and
the verdict, predicts a sentence and downloads the model zip. Screenshots of every step are
saved in the test's temporary directory (printed at the end).
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile

import pytest
from conftest import EXAMPLES, card_logits, card_recipe, start_app, stop_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]

pytestmark = pytest.mark.browser
if not CHROMIUM:
    if os.environ.get("FINETUNER_REQUIRE_BROWSER") == "1":
        raise RuntimeError("Chromium is required (apt-get install -y chromium)")
    pytest.skip("Debian chromium is not installed (apt-get install -y chromium)",
                allow_module_level=True)


HOMES: dict[str, object] = {}  # app url -> its studio home


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser") / "home"
    proc, url = start_app(home)
    HOMES[url] = home
    yield url
    stop_app(proc)


def finished_run_on_disk(home, name: str) -> None:
    """A completed run as the worker leaves it (config, name, results), for views of the runs
    list that must not wait for a training."""
    from finetuner.config import RunConfig
    from finetuner.results import write_results
    from finetuner.runs import create_run
    from finetuner.server.studio import LOCAL_USER, user_key

    runs = home / "users" / user_key(LOCAL_USER) / "runs"
    run = create_run(runs, RunConfig.from_dict({"data": {"train_file": "reviews.csv"},
                                                "method": {"method": "lora"}}))
    (run.root / "name.txt").write_text(name)
    write_results(run.results, {
        "status": "completed", "task": "classification", "metric": "macro_f1",
        "validation": {"macro_f1": 0.8712}, "test": {"macro_f1": 0.8544},
        "timing": {"train_seconds": 1234.0},
        "baselines": {"tfidf_logreg": {"validation": {"macro_f1": 0.79}}}})


# Gradio's own red boxes ("Value: x is not in the list of choices", "Value 200 is greater
# than maximum value 100."): raised before any handler runs, they name no setting and drop the
# event. The studio answers every problem in its own message boxes, so a page of these tests
# shows none of Gradio's: each page records every box it shows (they fade after seconds).
RECORD_BOXES = """
window.__ftBoxes = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.toast-body')) {
    const text = el.innerText.trim();
    if (text && !window.__ftBoxes.includes(text)) window.__ftBoxes.push(text);
  }
}).observe(document, {childList: true, subtree: true});
"""


def gradio_boxes(context) -> list[str]:
    """Every Gradio message box the context's pages showed (a page already closed, or one
    whose server was killed on purpose and said so, is not asked)."""
    seen = []
    for open_page in context.pages:
        try:
            seen += open_page.evaluate("window.__ftBoxes || []")
        except Exception:  # noqa: BLE001 - a page that went away has nothing to say
            pass
    return [b for b in seen if "connection" not in b.lower()]


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    # the studio's answers arrive within a second or two on an idle machine; a 2-core CI box
    # running two test workers can take several times that, so assertions wait up to 30 s
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                      accept_downloads=True)
        context.add_init_script(RECORD_BOXES)
        yield context.new_page()
        boxes = gradio_boxes(context)
        browser.close()
    assert not boxes, f"Gradio's own message boxes showed: {boxes}"


def shot(page, tmp_path, name):
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def upload_after_load(page, data) -> None:
    """Upload a training file once the page has loaded, and wait for its check. An upload
    made in the first instant of a page's life was lost now and then under a full suite (the
    file box empty again, no check, no Gradio message): not understood yet (the eleventh
    session's note), so the tests that are about something else upload a second after the
    page shows its first message (the page's load has been answered by then on any machine
    here); the tests about uploads during a load hold that load on purpose."""
    from playwright.sync_api import expect

    expect(page.get_by_text("Upload a training file to begin")).to_be_visible()
    page.wait_for_timeout(1_000)
    page.locator("input[type=file]").first.set_input_files(str(data))
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)


def train_a_named_run(page, name: str, timeout: float) -> None:
    """Start a run named `name` from the Train tab, wait until that run has finished and open
    the Results tab on it.
    Every test here is the same local user, so a fresh page opens on the last test's run, whose
    "Run completed. See the Results tab" can still be on screen right after Start is pressed:
    waiting for that sentence alone once read the previous run's results (CI)."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="3 · Train").click()
    page.get_by_label("Run name (optional)").fill(name)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text(f"Your last run: {name}")).to_be_visible(timeout=timeout)
    expect(page.get_by_text("See the Results tab")).to_be_visible()
    page.get_by_role("tab", name="4 · Results").click()
    expect(page.get_by_label("Run", exact=True)).to_have_value(re.compile(f"^{name} · "))


def fewer_evaluations(page) -> None:
    """One evaluation per epoch instead of four (Advanced settings, open): a run of a few
    steps on a tiny example file is otherwise scored after nearly every step (the QA flow
    spent 25 of its 45 s of training on five evaluations); the first and the last stay."""
    from playwright.sync_api import expect

    box = page.get_by_label("Evaluations per epoch")
    box.fill("1")
    box.press("Tab")
    # the box, which Start reads, not the command-line preview: in one full run under load
    # the preview kept the Max steps answer without this change for 30 s (a value dropped by
    # Gradio's "once" trigger mode, since fixed in wiring.bind; Start reads the boxes)
    expect(box).to_have_value("1")


def test_upload_train_judge_try_and_download(app_url, page, tmp_path):
    from playwright.sync_api import expect

    page.set_default_timeout(30_000)
    page.goto(app_url)
    expect(page.get_by_text("Upload a training file to begin")).to_be_visible()
    shot(page, tmp_path, "01-start")

    # 1 Data: upload the example file through the file input
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "sentiment.csv"))
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Rows: train 320, validation 40, test 40")).to_be_visible()
    shot(page, tmp_path, "02-data")

    # 2 Model & method: LoRA, a few steps
    page.get_by_role("tab", name="2 · Model & method").click()
    page.get_by_label("LoRA (adapters)").check()
    expect(page.locator("table.ft-methods")).to_contain_text("74,498 of 22,640,644")
    page.get_by_text("Advanced settings").click()
    steps = page.get_by_label("Max steps")
    steps.fill("8")
    steps.press("Tab")
    page.get_by_label("Also export ONNX (fp32 and int8)").check()
    # the preview follows each change through a server call: under a full
    # suite on two cores that can take longer than expect's 5 s default
    expect(page.get_by_label("Also export ONNX (fp32 and int8)")).to_be_checked()
    expect(page.locator("#cli")).to_contain_text("--method lora", timeout=30_000)
    expect(page.locator("#cli")).to_contain_text("--onnx --output runs/my-run", timeout=30_000)
    shot(page, tmp_path, "03-model")

    # 3 Train
    page.get_by_role("tab", name="3 · Train").click()
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled()
    start.click()
    expect(page.get_by_text("Started run")).to_be_visible()
    expect(page.locator(".ft-progress")).to_contain_text("step", timeout=60_000)
    shot(page, tmp_path, "04-training")
    expect(page.get_by_text("See the Results tab")).to_be_visible(timeout=180_000)
    expect(page.locator(".ft-progress")).to_contain_text("Finished")
    shot(page, tmp_path, "05-trained")
    # a changed setting: "Run completed" was about that run and goes; the plan beside Start
    # says what the next one does, the ONNX tick included
    page.get_by_role("tab", name="2 · Model & method").click()
    page.get_by_label("Epochs").fill("5")
    page.get_by_label("Epochs").press("Tab")
    page.get_by_role("tab", name="3 · Train").click()
    expect(page.get_by_text("See the Results tab")).to_have_count(0)
    expect(page.locator("#train-plan")).to_contain_text("5 epochs")
    expect(page.locator("#train-plan")).to_contain_text("ONNX export after training")
    shot(page, tmp_path, "05b-next-plan")

    # 4 Results: metrics and the verdict banner
    page.get_by_role("tab", name="4 · Results").click()
    expect(page.locator("[data-metric='accuracy']")).to_be_visible()
    verdict = page.locator(".ft-verdict")
    expect(verdict).to_be_visible()
    expect(verdict).to_contain_text("Evidence")
    expect(page.locator("table.ft-confusion")).to_be_visible()
    # the ONNX export runs after the results are written; its check appears when it lands
    onnx = page.locator(".ft-onnx")
    expect(onnx).to_contain_text("ONNX Runtime fp32", timeout=180_000)
    expect(onnx).to_contain_text("answers that agree with PyTorch")
    shot(page, tmp_path, "06-results")

    # download the model zip
    with page.expect_download() as info:
        page.get_by_role("button", name="Download model (.zip)").click()
    target = tmp_path / "model.zip"
    info.value.save_as(target)
    names = zipfile.ZipFile(target).namelist()
    assert "model/model.safetensors" in names and "model/onnx/model.onnx" in names

    # 5 Try it
    page.get_by_role("tab", name="5 · Try it").click()
    page.get_by_label("Text to classify").fill("An absolute delight, I loved it.")
    page.get_by_role("button", name="Predict", exact=True).click()
    label = page.get_by_test_id("label-output-value")
    expect(label).to_be_visible()
    assert label.inner_text().strip() in ("positive", "negative")
    shot(page, tmp_path, "07-try")

    # an empty try-it box gets a sentence, not an error
    page.get_by_label("Text to classify").fill("")
    page.get_by_role("button", name="Predict", exact=True).click()
    expect(page.get_by_text("Type a text to classify first.")).to_be_visible()
    print(f"\nscreenshots: {tmp_path}")


def stop_a_live_run(context, app_url) -> None:
    """After a test failed mid-run: a run left training would open the next tests' pages on its
    Train tab (every test here is the same local user) and fail them too."""
    page = context.new_page()
    page.goto(app_url)
    stop = page.get_by_role("button", name="Stop training")
    try:
        page.get_by_text("Re-attached to the running training").wait_for(timeout=10_000)
    except Exception:
        return  # nothing is training
    stop.click()
    page.locator(".ft-progress").get_by_text("Stopped").wait_for(timeout=60_000)


def test_reload_reattaches_and_stop_twice(app_url, page, tmp_path):
    try:
        reload_reattaches_and_stop_twice(app_url, page, tmp_path)
    except BaseException:
        stop_a_live_run(page.context, app_url)
        raise


def reload_reattaches_and_stop_twice(app_url, page, tmp_path):
    from playwright.sync_api import expect

    page.set_default_timeout(30_000)
    page.goto(app_url)
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "topics.tsv"))
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="2 · Model & method").click()
    page.get_by_label("Epochs").fill("50")  # and no early stopping: still training at the end
    page.get_by_label("Epochs").press("Tab")
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Early stopping patience").fill("0")
    page.get_by_label("Early stopping patience").press("Tab")
    page.get_by_role("tab", name="3 · Train").click()
    # named, and waited for by name: the page opened on the last test's finished run, whose
    # progress already read "step" (the reload once came before this run had started)
    page.get_by_label("Run name (optional)").fill("reload test")
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("Run: reload test", exact=True)).to_be_visible(timeout=60_000)
    expect(page.locator(".ft-progress")).to_contain_text("step", timeout=60_000)

    page.reload()  # the page opens on the Train tab of the running job
    expect(page.get_by_text("Re-attached to the running training")).to_be_visible()
    expect(page.locator(".ft-progress")).to_contain_text("step", timeout=30_000)
    shot(page, tmp_path, "08-reattached")
    # the Data tab comes back with the run: its file, checked again, and its report
    page.get_by_role("tab", name="1 · Data").click()
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    shot(page, tmp_path, "08b-data-restored")
    expect(page.get_by_text("Rows: train 128, validation 16, test 16")).to_be_visible()
    # ...and its settings: the page describes the run it shows, not the form's defaults
    page.get_by_role("tab", name="2 · Model & method").click()
    expect(page.get_by_label("Epochs")).to_have_value("50")
    page.get_by_role("tab", name="3 · Train").click()
    expect(page.locator("#train-plan")).to_contain_text("50 epochs")
    # a second page opened while the run trains, and a file uploaded while its load is still
    # being answered (the load's request held here until the upload has landed): the upload
    # wins. The load used to restore the running run's file from its snapshot of the empty
    # page over the upload (Gradio then held both files and every Data box read "Error")
    other = page.context.new_page()
    held = []

    def hold_the_load(route):  # the page's first event is its load
        held.append(route) if not held else route.continue_()

    other.route("**/queue/join*", hold_the_load)
    other.goto(app_url)
    for _ in range(600):  # the load is sent once the page has mounted (later on a busy machine)
        if held:
            break
        other.wait_for_timeout(100)  # lets Playwright call the route handler meanwhile
    assert len(held) == 1, "the page never sent its load event"
    with other.expect_response("**/gradio_api/upload*"):
        other.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "clauses.csv"))
    held[0].continue_()
    expect(other.get_by_text("Re-attached to the running training")).to_be_visible()
    other.get_by_role("tab", name="1 · Data").click()
    expect(other.get_by_text("Switched the task to Multi-label")).to_be_visible()
    expect(other.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    expect(other.get_by_text("topics.tsv")).to_have_count(0)
    expect(other.get_by_text("Error", exact=True)).to_have_count(0)
    shot(other, tmp_path, "08c-upload-during-load")
    other.close()
    stop = page.get_by_role("button", name="Stop training")
    stop.click()
    stop.click()  # pressed twice: the second press only says it is already stopping, or,
    # when the first already ended the run (an idle machine stops within a second), that it
    # has finished; either way no error and a run that ends as stopped
    expect(page.get_by_text(re.compile("Already stopping|already finished|Run stopped")).first
           ).to_be_visible()
    expect(page.get_by_text(re.compile("Traceback|Error"))).to_have_count(0)
    expect(page.locator(".ft-progress")).to_contain_text("Stopped", timeout=30_000)
    expect(stop).to_be_disabled()
    shot(page, tmp_path, "09-stopped")


@pytest.mark.parametrize("task, title, data, fields", [
    ("ner", "Named entity recognition", "ner.conll",
     {"Sentence": "Maria Lindqvist flew from Dublin to Lisbon."}),
    ("qa", "Question answering", "qa.jsonl",
     {"Question": "When was the town founded?",
      "Passage (context)": "The town was founded in 1412 by herring fishermen."}),
])
def test_other_tasks_upload_train_and_try(app_url, page, tmp_path, task, title, data, fields):
    from playwright.sync_api import expect

    page.set_default_timeout(30_000)
    page.goto(app_url)
    page.get_by_label(title).check()
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / data))
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    shot(page, tmp_path, f"{task}-1-data")
    page.get_by_role("tab", name="2 · Model & method").click()
    page.get_by_text("Advanced settings").click()
    steps = page.get_by_label("Max steps")
    steps.fill("6")
    steps.press("Tab")
    fewer_evaluations(page)
    train_a_named_run(page, f"browser {task}", timeout=180_000)
    expect(page.locator("[data-metric='f1']")).to_be_visible()
    expect(page.locator(".ft-verdict")).to_be_visible()
    shot(page, tmp_path, f"{task}-2-results")
    # trained without ONNX: the page offers the export, no command line
    export = page.get_by_role("button", name="Export to ONNX (fp32 and int8)")
    expect(export).to_be_visible()
    if task == "ner":  # once: the export runs in its own process and its check lands here
        export.click()
        expect(page.locator(".ft-onnx")).to_contain_text("being exported")
        expect(page.locator(".ft-onnx")).to_contain_text("ONNX Runtime fp32", timeout=180_000)
        expect(export).to_be_hidden()
        expect(page.locator(".ft-onnx")).not_to_contain_text("python -m")
        shot(page, tmp_path, f"{task}-2b-exported")
    page.get_by_role("tab", name="5 · Try it").click()
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Predict", exact=True).click()
    spans = page.get_by_test_id("highlighted-text")
    expect(spans.first).to_be_visible()
    details = page.locator("#try-details")
    expect(details).to_contain_text("Answer" if task == "qa" else "ntit")  # Entity / entities
    shot(page, tmp_path, f"{task}-3-try")


@pytest.mark.parametrize("task, choice, data, metric, text", [
    ("multi-label", "Multi-label classification", "clauses.csv", "micro_f1",
     "Invoices are payable within forty-five days of receipt."),
    ("regression", "Regression (a number)", "ratings.csv", "pearson",
     "The camera works well and is great value."),
])
def test_new_kinds_are_detected_trained_tried_and_downloaded(app_url, page, tmp_path, task,
                                                             choice, data, metric, text):
    """A file of joined labels or of scores switches the task by itself; the results show the
    kind's own numbers (per-label table, or the predicted-vs-true scatter), try-it shows every
    label against its threshold or the number, and the zip loads in plain transformers."""
    from playwright.sync_api import expect

    page.set_default_timeout(30_000)
    page.goto(app_url)
    files = page.locator("input[type=file]").first
    files.set_input_files(str(EXAMPLES / data))
    # an upload made right at page load is never lost (test_reload_reattaches_and_stop_twice
    # holds the load back to make sure): no second try here
    expect(page.get_by_text(f"Switched the task to {choice}")).to_be_visible(timeout=60_000)
    expect(page.get_by_label(choice)).to_be_checked()
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    shot(page, tmp_path, f"{task}-1-data")
    page.get_by_role("tab", name="2 · Model & method").click()
    page.get_by_text("Advanced settings").click()
    steps = page.get_by_label("Max steps")
    steps.fill("12")
    steps.press("Tab")
    fewer_evaluations(page)
    expect(page.locator("#cli")).to_contain_text(f"--task {task}")
    # the task's own learning rate came with the switch (multi-label: twice full's 1e-4)
    rate = "0.0002" if task == "multi-label" else "0.0001"
    expect(page.get_by_label("Learning rate")).to_have_value(rate)
    expect(page.locator("#cli")).to_contain_text(f"--lr {rate}")
    train_a_named_run(page, f"browser {task}", timeout=240_000)
    expect(page.locator(f"[data-metric='{metric}']")).to_be_visible()
    expect(page.locator(".ft-verdict")).to_be_visible()
    shot(page, tmp_path, f"{task}-2-results")
    if task == "regression":
        expect(page.locator(".ft-scatter svg circle.ft-point").first).to_be_attached()
    else:  # the per-label table
        expect(page.get_by_text("Scores per label (test split)")).to_be_visible()
        expect(page.get_by_role("gridcell", name="termination").first).to_be_visible()
        # how the decision thresholds were set, in words
        expect(page.locator(".ft-thresholds")).to_contain_text("Decision thresholds:")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download model (.zip)").click()
    target = tmp_path / "model.zip"
    info.value.save_as(target)
    zipfile.ZipFile(target).extractall(tmp_path / "unzipped")
    page.get_by_role("tab", name="5 · Try it").click()
    box = "Text to label" if task == "multi-label" else "Text to score"
    page.get_by_label(box).fill(text)
    page.get_by_role("button", name="Predict", exact=True).click()
    details = page.locator("#try-details")
    if task == "multi-label":
        expect(details).to_contain_text("Threshold (tuned on validation)")
        expect(details.locator("tr")).to_have_count(5)  # a header and four labels
    else:
        expect(details.locator(".ft-number")).to_be_visible()
    shot(page, tmp_path, f"{task}-3-try")

    import torch
    from transformers import AutoTokenizer

    folder = tmp_path / "unzipped" / "model"
    recipe = card_recipe(folder)  # the downloaded card's own snippet, in plain transformers
    model = recipe["model"]
    logits = card_logits(recipe, AutoTokenizer.from_pretrained(folder)(text, return_tensors="pt"))
    if task == "regression":
        shown = float(details.locator(".ft-number").get_attribute("data-value"))
        assert abs(float(logits[0, 0]) - shown) < 1e-3 * max(1.0, abs(shown))
    else:
        assert model.config.problem_type == "multi_label_classification"
        on = {n for n in details.locator(".ft-answer").get_attribute("data-labels").split(";")
              if n}
        probs = torch.sigmoid(logits)[0].tolist()
        import json

        thresholds = json.loads((folder / "finetuner.json").read_text())["options"]["thresholds"]
        assert on == {model.config.id2label[i] for i, p in enumerate(probs)
                      if p >= thresholds[model.config.id2label[i]]}


# the preview table's header cells, and whether each header's words stay whole: a word (split
# at spaces; a break right after a hyphen is a break between words) whose text spans more than
# one line box was broken inside the word
HEADER_GEOMETRY = """(block) => {
  const viewport = block.querySelector('.virtual-table-viewport');
  const box = viewport.getBoundingClientRect();
  const heads = [...block.querySelectorAll('th.header-cell')].map(th => {
    const span = th.querySelector('span.header') || th;
    const style = getComputedStyle(span);
    const rect = th.getBoundingClientRect();
    const broken = [];
    for (const node of [...span.childNodes].filter(n => n.nodeType === Node.TEXT_NODE)) {
      const re = /[^\\s-]+-?/g;
      let m;
      while ((m = re.exec(node.textContent))) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                                .map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(m[0]);
      }
    }
    return {text: span.textContent.trim(), left: rect.left, right: rect.right,
            wordBreak: style.wordBreak, overflowWrap: style.overflowWrap, broken};
  });
  const cells = [...block.querySelectorAll('.virtual-body .body-cell .cell-wrap > span')]
    .map(s => s.getBoundingClientRect().height / parseFloat(getComputedStyle(s).lineHeight));
  return {heads, cells, boxLeft: box.left, boxRight: box.left + viewport.clientWidth,
          scrollWidth: viewport.scrollWidth, overflowX: getComputedStyle(viewport).overflowX,
          pageWidth: document.documentElement.clientWidth,
          pageScrollWidth: document.documentElement.scrollWidth};
}"""


def test_a_change_sent_just_before_a_new_file_is_checked_is_not_rejected(app_url, page,
                                                                           tmp_path):
    """A setting changed right before a new file's columns arrive: the change's events carry
    the old file's columns, and reach the server after the new file's check has replaced the
    column pickers' choices (a busy server; here the change's requests are held back until
    then). Gradio used to reject such an event with "Value: text is not in the list of
    choices: [...]" in a red Error box, without running it: in CI it left the last run's "See
    the Results tab" in place, and when the rejected event was a file's own check, the upload
    was lost. Now it runs, and the new file is still the one checked."""
    from playwright.sync_api import expect

    page.set_default_timeout(30_000)
    page.goto(app_url)
    files = page.locator("input[type=file]").first
    files.set_input_files(str(EXAMPLES / "sentiment.csv"))
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="2 · Model & method").click()
    expect(page.locator("#cli")).to_contain_text("--data sentiment.csv")
    holding, held = [True], []

    def hold(route):  # the setting's events, while `holding`
        held.append(route) if holding[0] else route.continue_()

    page.route("**/queue/join*", hold)
    page.get_by_label("Epochs").fill("4")
    page.get_by_label("Epochs").press("Tab")
    for _ in range(300):
        if held:
            break
        page.wait_for_timeout(100)  # lets Playwright call the route handler meanwhile
    assert held, "the changed setting sent no event"
    page.wait_for_timeout(500)  # the rest of the change's events
    holding[0] = False
    page.get_by_role("tab", name="1 · Data").click()
    page.get_by_role("button", name="Clear").first.click()  # the training file's ×
    with page.expect_response("**/gradio_api/upload*"):
        files.set_input_files(str(EXAMPLES / "topics.tsv"))
    expect(page.get_by_label("Text column", exact=True)).to_have_value("headline", timeout=60_000)
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    for route in held:
        route.continue_()
    boxes = set()  # every message box that shows up while the held events are answered
    for _ in range(50):
        boxes.update(page.locator(".toast-body").all_inner_texts())
        page.wait_for_timeout(100)
    shot(page, tmp_path, "race-after")
    assert not boxes, boxes
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible()
    expect(page.get_by_label("Text column", exact=True)).to_have_value("headline")
    page.get_by_role("tab", name="2 · Model & method").click()
    expect(page.locator("#cli")).to_contain_text("--epochs 4")


def test_a_number_out_of_range_is_named_beside_start_and_at_start(app_url, page, tmp_path):
    """200 epochs typed in the box: the page used to answer every form event with a red box
    saying "Value 200 is greater than maximum value 100." (which value?) while the plan beside
    Start still said 3 epochs. Now the plan and Start name the setting, its range and the fix,
    and nothing else complains."""
    from playwright.sync_api import expect

    page.set_default_timeout(30_000)
    page.goto(app_url)
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "sentiment.csv"))
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="2 · Model & method").click()
    epochs = page.get_by_label("Epochs")
    epochs.fill("200")
    epochs.press("Tab")
    page.get_by_role("tab", name="3 · Train").click()
    named = "Epochs is 200. Use between 0.1 and 100."
    expect(page.locator("#train-plan")).to_contain_text(
        f"Start will refuse these settings: {named}")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator(".ft-msg").filter(has_text="Problem:")).to_contain_text(named)
    boxes = set()
    for _ in range(20):
        boxes.update(page.locator(".toast-body").all_inner_texts())
        page.wait_for_timeout(100)
    shot(page, tmp_path, "epochs-200")
    assert not boxes, boxes
    page.get_by_role("tab", name="2 · Model & method").click()
    epochs.fill("3")
    epochs.press("Tab")
    page.get_by_role("tab", name="3 · Train").click()
    expect(page.locator("#train-plan")).to_contain_text("Start trains: ")
    expect(page.locator("#train-plan")).to_contain_text("3 epochs")


@pytest.mark.parametrize("width", [1400, 1024])
def test_preview_table_shows_its_columns_with_whole_header_words(app_url, page, tmp_path,
                                                                  width):
    """The data preview at a desktop (1,400 px) and a laptop (1,024 px) width: the text, second
    text and label columns are in view (long texts wrap and are clipped to three lines instead
    of widening their column), any extra column is reached by the table's own horizontal
    scroll (never the page's), and no header is broken inside a word."""
    import csv

    from playwright.sync_api import expect

    # pairs.csv as it is, then the same rows with long texts and two extra columns whose
    # multi-word headers sit over short values (the squeeze that broke headers into pieces)
    with open(EXAMPLES / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    story = (" Meanwhile the long background story goes on about the weather, the town and "
             "the neighbours who watched it all happen.") * 3
    wide = tmp_path / "pairs-long.csv"
    with open(wide, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["premise", "hypothesis", "label", "annotator comment",
                      "agreement between annotators"])
        for i, r in enumerate(rows):
            out.writerow([r["premise"] + story, r["hypothesis"] + story, r["label"],
                          "checked twice", f"0.{i % 10}"])

    page.set_default_timeout(30_000)
    page.set_viewport_size({"width": width, "height": 900})
    for data, key in ((EXAMPLES / "pairs.csv", 3), (wide, 3)):
        page.goto(app_url)
        upload_after_load(page, data)
        block = page.locator(".block", has=page.get_by_text(
            "Preview: the first rows of the training file")).filter(
            has=page.locator(".virtual-table-viewport")).first
        expect(block.locator("th.header-cell span.header").first).to_have_text("premise")
        page.wait_for_timeout(500)  # the column widths are measured after the rows render
        shot(page, tmp_path, f"preview-{data.stem}-{width}")
        geo = block.evaluate(HEADER_GEOMETRY)
        heads = geo["heads"]
        names = [h["text"] for h in heads]
        assert names[:3] == ["premise", "hypothesis", "label"], names
        assert geo["pageScrollWidth"] <= geo["pageWidth"], "the page itself scrolls sideways"
        for i, h in enumerate(heads):
            assert h["wordBreak"] not in ("break-all", "break-word"), h
            assert h["overflowWrap"] != "anywhere", h
            assert not h["broken"], f"header {h['text']!r} is broken inside {h['broken']}"
            if i < key:  # the text, the second text and the label: in view without scrolling
                assert geo["boxLeft"] - 1 <= h["left"] and h["right"] <= geo["boxRight"] + 1, \
                    (h, geo["boxLeft"], geo["boxRight"], names)
            else:  # an extra column: in view, or reached by the table's own scroll
                assert h["right"] <= geo["boxRight"] + 1 or (
                    geo["overflowX"] in ("auto", "scroll")
                    and h["right"] - geo["boxLeft"] <= geo["scrollWidth"] + 1), (h, geo)
            assert h["right"] <= geo["pageWidth"] or i >= key, h
        # a long cell is clipped to a few lines rather than growing (or widening) the table
        assert geo["cells"] and max(geo["cells"]) <= 3.5, geo["cells"]
    # Your runs: name, status, task, method and both scores in view; the rest (time, disk,
    # created, id) in view or on the table's own scroll; no header split inside a word
    finished_run_on_disk(HOMES[app_url], "customer reviews, LoRA rank 16, second try")
    page.get_by_role("tab", name="Your runs").click()
    expect(page.get_by_text("customer reviews, LoRA rank 16, second try").last).to_be_visible()
    block = page.locator(".block", has=page.get_by_text("Your runs", exact=True)).filter(
        has=page.locator(".virtual-table-viewport")).first
    expect(block.locator("th.header-cell span.header").first).to_have_text("name")
    page.wait_for_timeout(500)
    shot(page, tmp_path, f"runs-{width}")
    geo = block.evaluate(HEADER_GEOMETRY)
    assert geo["pageScrollWidth"] <= geo["pageWidth"], "the page itself scrolls sideways"
    for i, h in enumerate(geo["heads"]):
        assert not h["broken"], f"header {h['text']!r} is broken inside {h['broken']}"
        if i < 6:
            assert geo["boxLeft"] - 1 <= h["left"] and h["right"] <= geo["boxRight"] + 1, \
                (h, geo)
        else:
            assert h["right"] <= geo["boxRight"] + 1 or (
                geo["overflowX"] in ("auto", "scroll")
                and h["right"] - geo["boxLeft"] <= geo["scrollWidth"] + 1), (h, geo)
    print(f"\nscreenshots: {tmp_path}")


def test_a_learning_curve_from_the_model_tab(app_url, page, tmp_path, tiny_model):
    """Draw a learning curve: three points in the user's queue, the plot with its noise band
    and fit, the sentence on what doubling the data would buy, no winner."""
    from playwright.sync_api import expect
    from test_browser_groups import open_studio

    open_studio(page, app_url, tiny_model)
    draw = page.get_by_role("button", name="Draw a learning curve")
    expect(draw).to_be_enabled()
    draw.click()
    expect(page.get_by_text("Learning curve queued")).to_be_visible()
    summary = page.locator("#group-summary")
    expect(summary).to_contain_text("What more data would buy:")
    expect(summary).to_contain_text(re.compile(
        "Doubling the training data|The curve is flat|more data cannot raise it"),
        timeout=180_000)
    status = page.locator(".ft-msg").filter(has_text="Learning curve '")
    expect(status).to_contain_text("3 of 3 members finished")
    table = page.locator("#group-table")
    for share in ("25%", "50%", "100%"):
        expect(table).to_contain_text(f"{share} of the training data")
    expect(table).to_contain_text("training examples")
    expect(table).not_to_contain_text("(winner)")
    plot = page.locator("#group-plot")
    expect(plot).to_contain_text("training examples")
    expect(plot.locator("polygon.ft-band")).to_have_count(1)  # the noise band
    expect(plot.locator("polyline")).to_have_count(2)  # the points, the dashed fit
    expect(page.get_by_text(re.compile("Traceback"))).to_have_count(0)
    shot(page, tmp_path, "g5-learning-curve")
    print(f"screenshots in {tmp_path}")
