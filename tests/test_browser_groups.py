"""Compare & tune in a real browser (Debian Chromium, Playwright): compare two methods from the
Model & method tab and read the live comparison (overlaid curves, the winner by validation,
test scores labelled as unused); start a search, kill the server mid-search (SIGKILL) and
find the search carried on by the next start, ending with its chosen run; put two finished
runs side by side from Your runs. A tiny random model keeps the runs short."""

from __future__ import annotations

import re
import signal

import pytest
from conftest import EXAMPLES, start_app, stop_app
from test_browser import ARGS, CHROMIUM, RECORD_BOXES, gradio_boxes, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.add_init_script(RECORD_BOXES)
        yield context.new_page()
        boxes = gradio_boxes(context)
        browser.close()
    assert not boxes, f"Gradio's own message boxes showed: {boxes}"


def open_studio(page, url, tiny_model):
    from playwright.sync_api import expect

    page.goto(url)
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "sentiment.csv"))
    expect(page.get_by_text("The data is ready to train on.")).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="2 · Model & method").click()
    page.get_by_label("A model folder on this server").check()
    box = page.get_by_label("Model folder or hub id")
    box.fill(str(tiny_model))
    box.press("Tab")
    # the model's message (a folder under the temporary directory is named "…": no server
    # path reaches a page), which comes with the model's state
    expect(page.locator(".ft-msg", has_text="Ready: Model:")).to_be_visible(timeout=60_000)
    page.get_by_text("Advanced settings").click()
    steps = page.get_by_label("Max steps")
    steps.fill("6")
    steps.press("Tab")
    page.get_by_text("Not sure? Compare methods, or tune the settings").click()


def test_compare_then_a_search_that_survives_a_server_kill(tmp_path, browser_page, tiny_model):
    from playwright.sync_api import expect

    page = browser_page
    home = tmp_path / "home"
    proc, url = start_app(home, env={"FINETUNER_MAX_JOBS": "1"})
    try:
        open_studio(page, url, tiny_model)
        # head only against full fine-tuning
        page.locator("#cmp-methods").get_by_label("LoRA (adapters)").uncheck()
        compare = page.get_by_role("button", name="Compare methods", exact=True)
        expect(compare).to_be_enabled()
        compare.click()
        expect(page.get_by_text("Comparison queued")).to_be_visible()
        summary = page.locator("#group-summary")
        # a named winner, or the best score tied within noise (tiny models often tie)
        expect(summary).to_contain_text(re.compile(
            "Winner by validation score|Best validation score, tied"), timeout=180_000)
        expect(summary).to_contain_text("not used for the choice")
        shot(page, tmp_path, "g1-compare")
        table = page.locator("#group-table")
        expect(table).to_contain_text("test (not used for the choice)")
        expect(table).to_contain_text(re.compile(r"\(winner\)|\(best score, tied\)"))
        expect(table).to_contain_text("head-only")
        expect(table).to_contain_text("full fine-tuning")
        plot = page.locator("#group-plot")
        expect(plot.locator("polyline")).to_have_count(2)  # both curves in one plot
        expect(page.get_by_text(re.compile("Traceback"))).to_have_count(0)
        shot(page, tmp_path, "g1-compare")

        # a search with no early stopping of trials, three trials
        page.get_by_role("tab", name="2 · Model & method").click()
        page.get_by_label("Trials", exact=True).fill("3")
        page.get_by_label("Stop weak trials early").click()
        page.get_by_role("option", name="Never stop a trial early").click()
        page.get_by_role("button", name="Tune settings", exact=True).click()
        # killed as soon as the page shows the search at work: the whole search is the window
        # (waiting for "1 or 2 of 3 trials" or for the passing "Search started" could miss a
        # fast search on a loaded machine: twice in CI the page showed it already finished)
        status = page.locator(".ft-msg").filter(has_text="Search '")
        expect(status).to_contain_text(re.compile(r"[0-3] of 3 trials finished"),
                                       timeout=180_000)
        shot(page, tmp_path, "g2-search-running")
        assert "Finished" not in status.inner_text(), "the search ended before the kill"

        proc.send_signal(signal.SIGKILL)  # the server dies mid-search
        proc.wait()
        proc, url = start_app(home, env={"FINETUNER_MAX_JOBS": "1"})
        page.goto(url)
        # the reloaded page opens on the running search by itself (unless it already ended
        # while the server started: then it is picked from the list)
        pick = page.get_by_label("Comparison or search")
        try:
            expect(pick).to_have_value(re.compile("tune full fine-tuning · search"),
                                       timeout=20_000)
        except AssertionError:
            page.get_by_role("tab", name="Compare & tune").click()
            pick.click()
            page.get_by_role("option", name=re.compile("tune full fine-tuning")).click()
        summary = page.locator("#group-summary")
        expect(summary).to_contain_text("Chosen settings", timeout=240_000)
        expect(summary).to_contain_text("only test score")
        status = page.locator(".ft-msg").filter(has_text="Search '")
        expect(status).to_contain_text("3 of 3 trials finished")
        expect(status).to_contain_text("Finished")
        trials = page.locator("#group-table")
        expect(trials).to_contain_text("best so far")
        expect(trials).to_contain_text("0 (your settings)")  # the first trial: the form's
        expect(trials).to_contain_text("learning rate")
        assert trials.inner_text().count("completed") == 3, trials.inner_text()
        expect(page.get_by_label("Comparison or search")).to_have_value(
            re.compile("search · Finished"))
        expect(page.locator("#group-plot")).to_contain_text("best so far")
        shot(page, tmp_path, "g3-search-done")

        # two finished runs of the same data, side by side from Your runs
        page.get_by_role("tab", name="Your runs").click()
        page.get_by_role("button", name="Refresh").first.click()
        chooser = page.get_by_label("Put finished runs of the same data side by side")
        for name in ("· head", "· full"):
            chooser.click()
            page.get_by_role("option", name=re.compile(re.escape(name))).first.click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Compare selected runs").click()
        expect(page.get_by_text("2 of your runs side by side")).to_be_visible()
        expect(page.locator("#group-summary")).to_contain_text(re.compile(
            "Winner by validation score|Best validation score, tied"))
        shot(page, tmp_path, "g4-side-by-side")
        print(f"screenshots in {tmp_path}")
    finally:
        stop_app(proc)
