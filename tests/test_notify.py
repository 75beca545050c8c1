"""Training notifications (--notify, util/notify.py) to a local JSON webhook.

A small HTTP server on 127.0.0.1 records what apprise's ``json://`` service posts; a
tiny training run must send start, one message per epoch with its losses, a new best,
the early stop and the finish, and a crash must be reported. A dead endpoint only
logs a warning.
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from absl import logging as absl_logging

from util import notify, training
from util.distributed import make_strategy


class _Recorder(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.messages.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    """(json:// URL, list of received JSON bodies) of a server on 127.0.0.1."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_address[1]}/hook", server.messages
    server.shutdown()
    server.server_close()


def test_training_run_sends_its_events(webhook, tiny_config, sample_csv, alphabet):
    url, messages = webhook
    csv_path = sample_csv()
    cfg = tiny_config(
        data={"train_files": (csv_path,), "dev_files": (csv_path,)},
        train={"epochs": 3, "early_stop": True, "es_epochs": 1, "es_min_delta": 1e9},
    )
    session = training.build_session(cfg, alphabet, make_strategy([]))
    with notify.training_events([url], cfg) as events:
        result = events.finished(training.train(session, on_epoch=events.epoch))
    titles = [m["title"] for m in messages]
    name = notify.run_name(cfg.checkpoint.save_checkpoint_dir)
    assert all(t.startswith(f"DeepSpeech {name}: ") for t in titles)
    events_sent = [t.split(": ", 1)[1] for t in titles]
    # es_min_delta 1e9: no improvement is significant, so epoch 1 stops the run
    assert events_sent[:3] == ["started", "epoch 0", "new best model"]
    assert events_sent[3] == "epoch 1" and "epoch 2" not in events_sent
    assert events_sent[-2:] == ["early stop", "finished"]
    assert result.stopped_early and result.epochs_completed == 2
    bodies = [m["message"] for m in messages]
    assert "n_hidden 16" in bodies[0] and csv_path in bodies[0]
    assert "train loss" in bodies[1] and "dev loss" in bodies[1]
    assert f"best dev loss {result.best_dev_loss:.4f}" in bodies[-1]
    assert all(m["type"] == "info" for m in messages)


def test_a_crash_is_reported_and_re_raised(webhook, tiny_config):
    url, messages = webhook
    cfg = tiny_config()
    with pytest.raises(ZeroDivisionError):
        with notify.training_events([url], cfg):
            1 / 0
    assert [m["title"].split(": ", 1)[1] for m in messages] == ["started", "crashed"]
    assert "ZeroDivisionError" in messages[-1]["message"]


def test_failed_delivery_is_logged_not_raised(tiny_config, caplog):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    absl_logging.set_verbosity(absl_logging.INFO)
    events = notify.training_events([f"json://127.0.0.1:{port}/x"], tiny_config())
    with caplog.at_level("WARNING"), events:
        events.finished(training.TrainResult(1, 0.5, 0.4, False))
    assert "could not be delivered" in caplog.text


def test_bad_urls_and_no_urls(tiny_config):
    with pytest.raises(ValueError, match="--notify 'nonsense'"):
        notify.training_events(["nonsense"], tiny_config())
    quiet = notify.training_events([], tiny_config())
    with quiet:  # no URL: every event is a no-op
        quiet.epoch(None)
        assert quiet.finished("result") == "result"
    assert notify.run_name("/runs/my_model/checkpoints").startswith("my_model on ")


def test_deepspeech_py_notify_flag(webhook, repo_root, ldc93s1_wav, tmp_path):
    """The flag's wiring: DeepSpeech.py --notify sends the run's events."""
    from helpers import run_deepspeech, write_ldc93s1_csv

    url, messages = webhook
    csv_path = write_ldc93s1_csv(tmp_path, ldc93s1_wav)
    result = run_deepspeech(repo_root, [
        "--train_files", csv_path, "--dev_files", csv_path, "--epochs", "1",
        "--n_hidden", "8", "--checkpoint_dir", str(tmp_path / "demo" / "checkpoints"),
        "--show_progressbar=false", "--notify", url,
    ])  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    titles = [m["title"] for m in messages]
    assert titles[0].startswith("DeepSpeech demo on ")
    assert [t.split(": ", 1)[1] for t in titles] == [
        "started", "epoch 0", "new best model", "finished",
    ]  # fmt: skip
