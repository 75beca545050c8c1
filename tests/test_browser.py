"""The server's page in a real headless Chromium (Debian's chromium + chromedriver).

Chromium's fake microphone plays LDC93S1 (``--use-file-for-fake-audio-capture``,
once: ``%noloop``); the page streams it through its AudioWorklet and WebSocket and must
show the exact transcript, after showing partial words. A file chosen in the page's
file input, and the same file dropped on the drop zone, go through POST /stt.
CI installs chromium, chromium-driver and selenium (.ci/run); elsewhere the test is
skipped when they are missing.
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
import soundfile

import deepspeech
from deepspeech import server
from helpers import LDC93S1_TEXT, LDC93S1_WAV, RATE, RunningServer, pad

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _missing() -> str:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return path
    return ""


pytestmark = pytest.mark.skipif(
    bool(_missing()) and not os.environ.get("CI"),
    reason=f"needs Debian's chromium, chromium-driver and selenium ({_missing()})",
)


@pytest.fixture(scope="module")
def page_server(ldc93s1_model):
    path, scorer, _ = ldc93s1_model
    model = deepspeech.Model(path)
    model.enableExternalScorer(scorer)
    with RunningServer(server.create_app(model)) as running:
        yield running


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory):
    """LDC93S1 with a little quiet room noise around it, as the fake microphone."""
    pcm, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    path = tmp_path_factory.mktemp("mic") / "mic.wav"
    soundfile.write(str(path), pad(pcm, 0.3, 0.6, 3, 0), RATE, subtype="PCM_16")
    return str(path)


@pytest.fixture(scope="module")
def browser(mic_wav):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1000,900",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, script, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


@pytest.mark.parametrize("query", ["", "?resample=worklet"])
def test_microphone_streaming_shows_the_transcript(
    page_server, browser, tmp_path, query
):
    """The browser resamples the microphone to 16 kHz (an AudioContext at the model's
    rate), or the page's worklet does (?resample=worklet: a 48 kHz context)."""
    from selenium.webdriver.common.by import By

    browser.get(page_server.url + "/" + query)
    _wait(browser, "return !document.getElementById('record').disabled")
    assert "16000 Hz streaming model" in browser.find_element(By.ID, "status").text
    browser.find_element(By.ID, "record").click()
    _wait(browser, "return document.getElementById('record').textContent === 'Stop'")
    status = browser.find_element(By.ID, "status").text
    assert ("→ 16000 Hz" in status) and (("16000 Hz →" in status) == (query == ""))
    # the fake microphone plays the 3.8 s file once; wait for its words, then stop
    _wait(
        browser, "return window.deepspeechPage.partials.some(t => t.includes('water'))"
    )
    time.sleep(1.5)
    browser.save_screenshot(str(tmp_path / "live.png"))
    browser.find_element(By.ID, "record").click()
    text = _wait(browser, "return document.getElementById('transcript').textContent")
    partials = browser.execute_script("return window.deepspeechPage.partials")
    assert text == LDC93S1_TEXT
    assert any(p and p != LDC93S1_TEXT for p in partials)  # words appeared live
    words = browser.find_element(By.ID, "words").text
    assert words.startswith("she ") and "year" in words
    # the page is ready for the next recording (stop() closed the audio context)
    _wait(browser, "return document.getElementById('record').textContent"
          " === 'Start microphone'")  # fmt: skip
    shot = os.environ.get("DEEPSPEECH_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)


def test_file_input_and_drop_go_through_post_stt(page_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    pcm, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    flac = tmp_path / "clip.flac"
    soundfile.write(str(flac), np.stack([pcm, pcm], 1), RATE)  # stereo FLAC
    browser.get(page_server.url + "/")
    _wait(browser, "return !document.getElementById('record').disabled")
    browser.find_element(By.ID, "file").send_keys(str(flac))
    _wait(browser, "return document.getElementById('transcript').textContent")
    assert browser.find_element(By.ID, "transcript").text == LDC93S1_TEXT
    # drop the chosen file on the drop zone (a DragEvent with a DataTransfer)
    browser.execute_script("""
        document.getElementById('transcript').textContent = '';
        const file = document.getElementById('file').files[0];
        const data = new DataTransfer();
        data.items.add(file);
        document.getElementById('drop').dispatchEvent(
            new DragEvent('drop', {dataTransfer: data, bubbles: true}));
        """)
    _wait(browser, "return document.getElementById('transcript').textContent")
    assert browser.find_element(By.ID, "transcript").text == LDC93S1_TEXT
    assert "clip.flac" in browser.find_element(By.ID, "status").text
