"""optuna-dashboard on a finished search, in a real browser: headless Chromium loads the study
page, the note and the chosen trial, and the rendered pages show the answer first, the plots and
readable trial attributes. Skipped when Chromium is not installed (``.ci/run`` installs Debian's).

Set ``OSH_SCREENSHOTS_DIR`` to keep the screenshots (``docs/`` holds the committed ones).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

import optuna_shape as osh

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser",
                                                        "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Chromium not installed (apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1400,1700"]
SERVE = ("import sys, optuna_dashboard; "
         "optuna_dashboard.run_server(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))")


def lookup(shape: osh.Shape) -> float:
    """A fast stand-in for training: a smooth accuracy surface in percent."""
    d, w = shape
    return 99.0 - 1.1 / w - 14.0 / d + 0.05 / (w * w)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def visible_text(dom: str) -> str:
    """The text a reader sees (plot text inside SVG included), whitespace collapsed."""
    dom = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    from optuna_shape.reporting.dashboard import attach_to_dashboard

    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'shape.db'}"
    space = osh.ShapeSpace("wrn", depth=(10, 22, 6), width=[0.25, 0.5, 1, 2], in_channels=1,
                           num_classes=10, image_size=8)
    sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=0.5), goal="accuracy",
                               seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=url,
                                study_name="browser-demo")
    study.optimize(lambda t: lookup(osh.suggest_shape(t, space)))
    attach_to_dashboard(study)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, url, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/api/meta", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("optuna-dashboard did not start")
        yield base, study, tmp
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def chromium(args: list[str], profile: Path, timeout: int = 120) -> str:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout


def render(base: str, path: str, tmp: Path, must: str) -> str:
    """The page's DOM after its JavaScript ran (one retry: a first start may print nothing)."""
    text = ""
    for attempt in range(2):
        dom = chromium(["--dump-dom", base + path], tmp / f"profile-{attempt}")
        text = visible_text(dom)
        if must in text:
            return text
    return text


def screenshot(base: str, path: str, tmp: Path, name: str) -> Path:
    out = tmp / name
    for attempt in range(2):  # a first start may write nothing
        chromium([f"--screenshot={out}", base + path], tmp / f"profile-shots-{attempt}")
        if out.exists() and out.stat().st_size > 20_000:
            break
    keep = os.environ.get("OSH_SCREENSHOTS_DIR")
    if keep and out.exists():
        shutil.copy(out, Path(keep) / name)
    return out


def test_note_leads_with_the_answer_then_the_table(dashboard):
    base, study, tmp = dashboard
    best = osh.best_shape(study)
    assert best is not None
    text = render(base, f"/dashboard/studies/{study._study_id}/note", tmp, "Answer")
    head = f"Answer: depth {best.depth}, width {best.width:g}"
    assert head in text, text[:2000]
    assert "Why:" in text and "Complying shapes (best first)" in text
    assert text.index(head) < text.index("Why:") < text.index("Complying shapes (best first)")
    assert "size ≤ 0.5 MB" in text
    shot = screenshot(base, f"/dashboard/studies/{study._study_id}/note", tmp,
                      "dashboard-note.png")
    assert shot.stat().st_size > 20_000


def test_study_page_renders_the_plots(dashboard):
    base, study, tmp = dashboard
    text = render(base, f"/dashboard/studies/{study._study_id}", tmp,
                  "predicted accuracy over the design space")
    assert "browser-demo: predicted accuracy over the design space" in text
    assert "accuracy vs parameter count per width" in text
    for legend in ("infeasible", "chosen", "trained ("):
        assert legend in text, legend
    shot = screenshot(base, f"/dashboard/studies/{study._study_id}", tmp, "dashboard.png")
    assert shot.stat().st_size > 20_000


def test_chosen_trial_shows_readable_attributes(dashboard):
    base, study, tmp = dashboard
    best = osh.best_shape(study)
    number = next(t.number for t in study.trials if t.state.name == "COMPLETE"
                  and t.params.get("depth") == best.depth
                  and t.params.get("width") == best.width)
    path = f"/dashboard/studies/{study._study_id}/trials?numbers={number}"
    text = render(base, path, tmp, "User Attributes")
    assert f"Trial {number}" in text and "User Attributes" in text
    for key in ("stage", "size_mb"):
        assert key in text, key
    screenshot(base, path, tmp, "dashboard-trial.png")


def test_screened_shape_is_a_pruned_trial_with_its_reason(dashboard):
    base, study, tmp = dashboard
    number = next(t.number for t in study.get_trials()
                  if t.user_attrs.get("stage") == "screened")
    path = f"/dashboard/studies/{study._study_id}/trials?numbers={number}"
    text = render(base, path, tmp, "reject_reason")
    assert f"Trial {number}" in text and "Pruned" in text
    assert "stage screened" in text and re.search(r"reject_reason size [\d.]+ MB > 0.5 MB", text)
