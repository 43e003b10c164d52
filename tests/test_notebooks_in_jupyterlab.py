"""End to end, as a learner uses it: JupyterLab in a real browser (Playwright + the system Chromium).

Starts JupyterLab on localhost from this environment over a temporary copy of notebooks 01 and 06
(so autosave never touches the repository). With the smoke profile it runs the cells of 01 that the
VRAM calculator needs (setup, the calculator), moves its sequence-length slider and checks the shown
total against `course_utils.vram`, then runs the cells of 06 that the generation playground needs
(setup, the adapter: a smoke adapter written beforehand, as 05 leaves one; the playground) and uses the
playground's adapter toggle. Every cell of both notebooks runs under nbval; here the widgets are driven
in a real browser. Screenshots go to outputs/browser_test/ on failure. The server is stopped in every case.

Needs Debian's `chromium` (/usr/bin/chromium; `.ci/run` installs it). Without it the test is
skipped, unless COURSE_REQUIRE_BROWSER=1 (set by CI), where it fails.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "outputs" / "browser_test"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"{CHROMIUM} not found: install Debian's chromium (see .ci/run)")
    pytest.skip(f"{CHROMIUM} not found (install Debian's chromium to run the browser test)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _smoke_adapter(folder: Path) -> None:
    """What 05 leaves for 06 under smoke: a smoke adapter with its metadata, so that 06's ``ensure_adapter`` finds it.
    Its B matrices are random instead of trained (the toggle is what is tested here); the training 06 starts when the
    adapter is missing is tested in tests/test_train.py."""
    from conftest import randomize_lora_b

    from course_utils.adapter import adapter_metadata, save_adapter
    from course_utils.loading import load_model, load_tokenizer
    from course_utils.lora import attach_lora
    from course_utils.profiles import get_profile

    smoke = get_profile("smoke")
    model = randomize_lora_b(attach_lora(load_model(smoke.model), smoke.lora), seed=0, std=0.05)
    save_adapter(model, folder, metadata=adapter_metadata(smoke, load_tokenizer(smoke.model), global_step=0))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of notebooks 01 and 06; stopped in every case."""
    work = tmp_path_factory.mktemp("lab")
    for name in ("01_vram_budgeting.ipynb", "06_inference.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, work / name)
    _smoke_adapter(work / "outputs" / "05_training" / "smoke" / "adapter")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "COURSE_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "JUPYTER_CONFIG_DIR": str(work / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(work / ".runtime")}
    env.pop("MPLBACKEND", None)
    log = open(work / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{(work / 'server.log').read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()


@pytest.fixture
def page(request):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        try:
            yield pg
        finally:
            if getattr(request.node, "failed", False):
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shot = ARTIFACTS / f"{request.node.name}.png"
                pg.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}")
            browser.close()


def _open_and_run(page, base: str, token: str, name: str, only: list[str]) -> None:
    """Open a notebook in Lab and run the code cells holding one of the texts in ``only``, each selected and run in
    order as a learner would with Shift+Enter."""
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    # the notebook must be the current widget with a started kernel (a reload restores other tabs too)
    page.wait_for_function("""(name) => {
        const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        return w && w.context && w.context.path === name && w.sessionContext && w.sessionContext.session
               && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle';
    }""", arg=name, timeout=90_000)
    ran, errors = page.evaluate("""async (only) => {
        const app = window.jupyterapp, notebook = app.shell.currentWidget.content, ran = [], errors = [];
        for (let i = 0; i < notebook.widgets.length; i++) {
            const cell = notebook.widgets[i], source = cell.model.sharedModel.getSource();
            if (cell.model.type !== 'code' || !only.some((text) => source.includes(text))) continue;
            notebook.activeCellIndex = i;
            notebook.deselectAll();
            ran.push(i);
            await app.commands.execute('notebook:run-cell');  // resolves when the cell has run
            for (const out of cell.model.outputs.toJSON()) {
                if (out.output_type === 'error') errors.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
            }
            if (errors.length) break;  // later cells would only fail on names this one did not define
        }
        return [ran, errors];
    }""", only)
    assert not errors, f"{name}: {errors}"
    assert len(ran) == len(only), f"cells of {name} holding {only}: {ran}"


def _total(page) -> str:
    return page.locator("b.vram-total").first.inner_text()


def test_vram_calculator_and_playground_in_jupyterlab(lab, page):
    from course_utils.units import GIB
    from course_utils.vram import estimate_vram

    base, token = lab
    _open_and_run(page, base, token, "01_vram_budgeting.ipynb", only=["profile = setup()", "vram_calculator()"])
    page.wait_for_selector("b.vram-total", timeout=240_000)
    start = _total(page)
    expected_start = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, 8, gradient_checkpointing=True,
                                   optimizer="paged_adamw_8bit").total / GIB
    assert start == f"{expected_start:.3f}"

    # move the "길이" (sequence length) slider one step to the right with the keyboard (512 -> 640 tokens)
    slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text="길이")).first
    slider.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("(old) => document.querySelector('b.vram-total').innerText !== old", arg=start,
                           timeout=30_000)
    readout = slider.locator(".widget-readout").inner_text().strip()
    assert readout == "640"
    expected = estimate_vram("tinyllama-1.1b", "qlora", 640, 1, 8, gradient_checkpointing=True,
                             optimizer="paged_adamw_8bit").total / GIB
    assert _total(page) == f"{expected:.3f}"

    # notebook 06: the generation playground's adapter toggle
    _open_and_run(page, base, token, "06_inference.ipynb",
                  only=["profile = setup()", "adapter_dir = ensure_adapter(", "generation_playground(model"])
    page.wait_for_selector(".playground-answer", timeout=420_000)
    state = page.locator(".playground-state").first
    assert state.inner_text() == "어댑터 켬"
    page.get_by_role("button", name="어댑터 켬").first.click()
    page.wait_for_function("() => { const e = document.querySelector('.playground-state');"
                           " return e !== null && e.innerText.startsWith('어댑터 끔'); }", timeout=300_000)
    assert state.inner_text() == "어댑터 끔 (기본 모델)"
