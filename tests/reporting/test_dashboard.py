"""optuna-dashboard on a study made by a real (tiny) search: trials carry their attributes, the
study its note and plots — checked through the dashboard server's HTTP JSON API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

from optuna_shape.cli import main

SERVE = ("import sys, optuna_dashboard; "
         "optuna_dashboard.run_server(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def study_url(tmp_path_factory):
    path = tmp_path_factory.mktemp("dash") / "dash.db"
    url = f"sqlite:///{path}"
    rc = main(["search", "--depth", "10,16", "--width", "0.25,0.5,1", "--epochs", "1",
               "--subset", "150", "--threads", "1",
               "--max-latency-ms", "10000", "--storage", url, "--quiet"])
    assert rc == 0
    return url


@pytest.fixture(scope="module")
def server(study_url):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, study_url, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                get(base + "/api/meta")
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("optuna-dashboard did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dashboard_shows_trial_attributes_note_and_plots(server, study_url):
    studies = get(server + "/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["shape-digits"]
    sid = studies[0]["study_id"]
    detail = get(server + f"/api/studies/{sid}")
    trained = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert trained
    for t in trained:
        attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
        assert attrs["stage"] in ("initial", "acquire", "repeat", "sample", "verify")
        assert {"size_mb", "latency_ms", "params"} <= set(attrs)
        assert t["intermediate_values"], "learning curve missing"
    # the 4th training is predicted by a provisional model fitted on the first three
    assert any("predicted_accuracy" in {a["key"] for a in t["user_attrs"]} for t in trained)
    note = detail["note"]["body"]
    assert note.startswith("# Answer: depth") and "**Why:**" in note
    assert note.index("**Why:**") < note.index("| # |")  # the answer and why, then the table
    ids = {g["id"] for g in detail["plotly_graph_objects"]}
    assert {"osh-grid", "osh-accuracy-vs-params", "osh-latency-vs-depth"} <= ids
    # attaching again (report --update-dashboard) replaces, never duplicates
    assert main(["report", "--storage", study_url, "--update-dashboard"]) == 0
    from optuna_dashboard._custom_plot_data import list_graph_object_ids

    study = optuna.load_study(study_name="shape-digits", storage=study_url)
    from optuna_shape import store as st

    attrs = st.study_attrs(study)
    assert sorted(list_graph_object_ids(attrs)) == sorted(ids)
