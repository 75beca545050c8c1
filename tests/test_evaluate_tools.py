"""util/evaluate_tools.py: error rates, set aggregation, report text and JSON."""

from __future__ import annotations

import json
import math
import os
import random
from typing import List, Sequence

import pytest

from ctcdecode import fileio
from util.evaluate_tools import (
    SampleResult,
    SetReport,
    char_errors,
    format_report,
    levenshtein,
    make_sample_result,
    report_samples,
    word_errors,
    write_results_json,
)

RULE = "-" * 80


def _naive_levenshtein(a: Sequence, b: Sequence) -> int:
    """Full-table textbook DP, the oracle for the vectorised implementation."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        table[i][0] = i
    for j in range(len(b) + 1):
        table[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(
                table[i - 1][j] + 1,
                table[i][j - 1] + 1,
                table[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
    return table[len(a)][len(b)]


def _sample(name: str, wer_num: int, loss: float, n_words: int = 4) -> SampleResult:
    """A sample with ``wer_num`` of ``n_words`` reference words substituted."""
    src = " ".join(f"w{i}" for i in range(n_words))
    res = " ".join(("x" if i < wer_num else f"w{i}") for i in range(n_words))
    return make_sample_result(name, src, res, loss)


def _set(n: int) -> SetReport:
    """n samples with distinct (WER, loss) so every ordering is unambiguous."""
    samples = [_sample(f"s{i}.wav", i % 5, loss=float(i)) for i in range(n)]
    return SetReport(name="test.csv", samples=tuple(samples))


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("kitten", "sitting", 3),
        ("", "", 0),
        ("", "abc", 3),
        ("abc", "", 3),
        ("abc", "abc", 0),
        ("abc", "cba", 2),
        (["she", "had", "your"], ["she", "had"], 1),
        (("a", "b"), ("b", "a"), 2),
    ],
)
def test_levenshtein_known_values(a: Sequence, b: Sequence, expected: int) -> None:
    assert levenshtein(a, b) == expected
    assert levenshtein(b, a) == expected
    assert isinstance(levenshtein(a, b), int)


def test_levenshtein_matches_naive_dp_on_random_strings() -> None:
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 12)))
        assert levenshtein(a, b) == _naive_levenshtein(a, b), (a, b)


def test_levenshtein_long_strings_exact() -> None:
    """Long inputs give the reference distance; known edits cost what they should."""
    rng = random.Random(1)
    a = "".join(rng.choice("abcdefgh ") for _ in range(600))
    b = "".join(rng.choice("abcdefgh ") for _ in range(500))
    assert levenshtein(a, b) == _naive_levenshtein(a, b)
    edited = "z" + a[1:300] + a[310:] + "yyy"  # 1 substitution, 10 deletions, 3 inserts
    assert levenshtein(a, edited) == 14


def test_word_and_char_errors_classic_example() -> None:
    ref, hyp = "she had your dark suit", "she had dark suit"
    assert word_errors(ref, hyp) == (1, 5)
    assert char_errors(ref, hyp) == (5, 22)  # "your " deleted, space included
    sample = make_sample_result("a.wav", ref, hyp, 1.5)
    assert sample.wer == pytest.approx(0.2)
    assert sample.cer == pytest.approx(5 / 22)


def test_words_split_on_any_whitespace() -> None:
    assert word_errors("  a   b\tc ", "a b c") == (0, 3)
    # Characters are compared as they are, so the extra spaces do count.
    assert char_errors("a  b", "a b") == (1, 4)


def test_empty_hypothesis_is_all_deletions() -> None:
    sample = make_sample_result("a.wav", "one two three", "", 2.0)
    assert (sample.word_distance, sample.word_length) == (3, 3)
    assert (sample.char_distance, sample.char_length) == (13, 13)
    assert sample.wer == 1.0
    assert sample.cer == 1.0


def test_empty_reference_rates_are_defined() -> None:
    both_empty = make_sample_result("a.wav", "", "", 0.0)
    assert both_empty.wer == 0.0 and both_empty.cer == 0.0
    inserted = make_sample_result("b.wav", "", "hello world", 0.0)
    assert (inserted.word_distance, inserted.word_length) == (2, 0)
    assert inserted.wer == 1.0 and inserted.cer == 1.0


def test_sample_wer_may_exceed_one_with_insertions() -> None:
    sample = make_sample_result("a.wav", "hi", "oh hi there friend", 0.0)
    assert sample.wer == pytest.approx(3.0)


def test_unicode_is_compared_per_code_point() -> None:
    assert char_errors("über straße", "uber strasse") == (3, 11)
    assert word_errors("über straße", "uber straße") == (1, 2)
    assert char_errors("你好世界", "你好") == (2, 4)
    assert char_errors("a🙂b", "ab") == (1, 3)


def test_to_json_dict_has_deepspeech_keys_and_plain_types() -> None:
    sample = make_sample_result(
        "a.wav", "she had your dark suit", "she had dark suit", 1
    )
    record = sample.to_json_dict()
    assert set(record) == {"wav_filename", "src", "res", "loss", "wer", "cer"}
    assert type(record["loss"]) is float
    assert record["wer"] == pytest.approx(0.2)
    json.dumps(record)


def test_sample_result_is_frozen() -> None:
    sample = make_sample_result("a.wav", "a", "a", 0.0)
    with pytest.raises(AttributeError):
        sample.loss = 1.0  # type: ignore[misc]


def test_set_wer_is_total_distance_over_total_words_not_mean() -> None:
    short_wrong = make_sample_result("a.wav", "yes", "no", 1.0)  # WER 1.0
    nine_words = "one two three four five six seven eight nine"
    long_right = make_sample_result("b.wav", nine_words, nine_words, 3.0)  # WER 0.0
    report = SetReport("test.csv", (short_wrong, long_right))
    assert report.wer == pytest.approx(1 / 10)
    mean_of_rates = (short_wrong.wer + long_right.wer) / 2
    assert mean_of_rates == pytest.approx(0.5)
    assert report.wer != pytest.approx(mean_of_rates)
    assert report.cer == pytest.approx(3 / (3 + 44))  # "yes" -> "no" is 3 edits
    assert report.mean_loss == pytest.approx(2.0)
    assert report.n_samples == 2


def test_set_rates_are_capped_at_one_like_deepspeech() -> None:
    sample = make_sample_result("a.wav", "hi", "oh hi there friend", 0.0)
    report = SetReport("test.csv", (sample,))
    assert report.wer == 1.0
    assert report.cer == 1.0


def test_empty_set_is_defined() -> None:
    report = SetReport("empty.csv", ())
    assert report.n_samples == 0
    assert report.wer == 0.0 and report.cer == 0.0
    assert math.isnan(report.mean_loss)
    assert [len(s) for _, s in report_samples(report, 3)] == [0, 0, 0]


def _names(samples: List[SampleResult]) -> List[str]:
    return [s.wav_filename for s in samples]


def test_report_orders_by_wer_then_loss_descending() -> None:
    samples = (
        _sample("bad_low_loss.wav", 2, 0.5),
        _sample("good_low_loss.wav", 0, 0.1),
        _sample("good_high_loss.wav", 0, 9.0),
        _sample("bad_high_loss.wav", 2, 7.0),
    )
    sections = report_samples(SetReport("t.csv", samples), 2)
    assert [name for name, _ in sections] == ["Best WER", "Median WER", "Worst WER"]
    assert _names(sections[0][1]) == ["good_high_loss.wav", "good_low_loss.wav"]
    assert _names(sections[2][1]) == ["bad_high_loss.wav", "bad_low_loss.wav"]


def test_report_selection_with_one_sample() -> None:
    sections = dict(report_samples(_set(1), 10))
    assert _names(sections["Best WER"]) == ["s0.wav"]
    assert sections["Median WER"] == [] and sections["Worst WER"] == []


def test_report_selection_with_five_samples() -> None:
    report = _set(5)  # WERs 0, 0.25, 0.5, 0.75, 1.0 for s0..s4
    sections = dict(report_samples(report, 10))
    assert _names(sections["Best WER"]) == [f"s{i}.wav" for i in range(5)]
    sections = dict(report_samples(report, 1))
    assert _names(sections["Best WER"]) == ["s0.wav"]
    assert _names(sections["Median WER"]) == ["s2.wav"]
    assert _names(sections["Worst WER"]) == ["s4.wav"]
    sections = dict(report_samples(report, 2))
    assert _names(sections["Best WER"]) == ["s0.wav", "s1.wav"]
    assert _names(sections["Median WER"]) == ["s2.wav"]
    assert _names(sections["Worst WER"]) == ["s3.wav", "s4.wav"]


@pytest.mark.parametrize("report_count", [1, 3, 6])
def test_report_selection_with_twenty_samples_matches_deepspeech(
    report_count: int,
) -> None:
    report = _set(20)
    ordered = sorted(report.samples, key=lambda s: (s.wer, -s.loss))
    n, k = len(ordered), report_count
    # DeepSpeech 0.9 print_report's slices, valid without overlap for n >= 3k.
    expected_median = ordered[n // 2 - k // 2 : n // 2 + k - k // 2]
    sections = dict(report_samples(report, k))
    assert sections["Best WER"] == ordered[:k]
    assert sections["Median WER"] == expected_median
    assert sections["Worst WER"] == ordered[-k:]


@pytest.mark.parametrize("n", range(0, 26))
@pytest.mark.parametrize("report_count", range(0, 9))
def test_report_sections_never_repeat_a_sample(n: int, report_count: int) -> None:
    sections = report_samples(_set(n), report_count)
    shown = [s.wav_filename for _, samples in sections for s in samples]
    assert len(shown) == len(set(shown))
    assert len(sections[0][1]) == min(report_count, n)
    assert all(len(samples) <= report_count for _, samples in sections)
    if n >= 3 * report_count:
        assert len(shown) == 3 * report_count


def test_report_count_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="report_count"):
        report_samples(_set(3), -1)


def test_format_report_exact_deepspeech_text_without_empty_sections() -> None:
    """DeepSpeech's text; a one-sample set prints no empty Median/Worst headers."""
    sample = make_sample_result(
        "/data/a.wav", "she had your dark suit", "she had dark suit", 1.234567
    )
    text = format_report(SetReport("data/test.csv", (sample,)), 1)
    expected = [
        "Test on data/test.csv - WER: 0.200000, CER: 0.227273, loss: 1.234567",
        RULE,
        "Best WER: ",
        RULE,
        "WER: 0.200000, CER: 0.227273, loss: 1.234567",
        " - wav: file:///data/a.wav",
        ' - src: "she had your dark suit"',
        ' - res: "she had dark suit"',
        RULE,
    ]
    assert text.split("\n") == expected


def test_format_report_lists_every_selected_sample() -> None:
    report = _set(20)
    text = format_report(report, 2)
    lines = text.split("\n")
    assert lines[0].startswith("Test on test.csv - WER: ")
    assert sum(line.startswith(" - wav: file://") for line in lines) == 6
    for section in ("Best WER: ", "Median WER: ", "Worst WER: "):
        assert section in lines


def _two_reports() -> List[SetReport]:
    first = SetReport(
        "a/test.csv",
        (make_sample_result("x.wav", "über straße", "uber strasse", 0.25),),
    )
    second = SetReport(
        "b/test.csv",
        (
            make_sample_result("y.wav", "你好", "你好", 1.0),
            make_sample_result("z.wav", "yes", "", 2.0),
        ),
    )
    return [first, second]


def test_write_results_json_round_trips(tmp_path) -> None:
    path = tmp_path / "results.json"
    reports = _two_reports()
    write_results_json(str(path), reports)
    raw = path.read_bytes().decode("utf-8")
    assert "straße" in raw and "你好" in raw  # ensure_ascii=False
    loaded = json.loads(raw)
    expected = [
        {**s.to_json_dict(), "test_set": r.name} for r in reports for s in r.samples
    ]
    assert loaded == expected
    assert [r["test_set"] for r in loaded] == ["a/test.csv", "b/test.csv", "b/test.csv"]
    assert os.listdir(tmp_path) == ["results.json"]


def test_write_results_json_overwrites_and_leaves_no_tmp(tmp_path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old", encoding="utf-8")
    write_results_json(str(path), [])
    assert json.loads(path.read_text(encoding="utf-8")) == []
    assert os.listdir(tmp_path) == ["results.json"]


def test_write_results_json_failure_keeps_old_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "results.json"
    path.write_text("old", encoding="utf-8")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_results_json(str(path), _two_reports())
    assert path.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["results.json"]


def test_write_results_json_relative_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_results_json("results.json", _two_reports())
    assert len(json.loads((tmp_path / "results.json").read_text("utf-8"))) == 3
    assert os.listdir(tmp_path) == ["results.json"]
