"""Word timestamp parsers and validation, on fixture files in every supported format."""

import json
from pathlib import Path

import pytest

from facedit.timestamps import (
    TimestampError,
    Word,
    load_words,
    parse_words,
    validate_words,
    words_from_list,
    words_to_list,
)

FIXTURES = Path(__file__).parent / "fixtures" / "timestamps"
TEXTS = ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog."]
STARTS = [0.3, 0.42, 0.72, 1.02, 1.3, 1.6, 1.78, 1.86, 2.0]
ENDS = [0.42, 0.72, 1.02, 1.3, 1.6, 1.78, 1.86, 2.0, 2.12]


@pytest.mark.parametrize(
    "name", ["whisper.json", "whisper_timestamped.json", "stable_ts.json", "words.json", "words.txt"]
)
def test_every_format_gives_the_same_words(name):
    words = load_words(FIXTURES / name, duration_s=2.5)
    assert [w.text for w in words] == TEXTS  # leading spaces of whisper words stripped
    assert [w.start for w in words] == STARTS
    assert [w.end for w in words] == ENDS
    assert not any(w.interpolated for w in words)


def test_whisperx_untimed_words_are_interpolated_and_flagged():
    words = load_words(FIXTURES / "whisperx.json", duration_s=4.2)
    assert [w.text for w in words][-5:] == ["It", "was", "1990,", "in", "May."]
    assert len(words) == 14  # from the segments, not the (partial) word_segments
    by_text = {w.text: w for w in words}
    assert by_text["1990,"] == Word("1990,", 2.8, 3.6, interpolated=True)  # gap between 'was' and 'in'
    assert by_text["May."] == Word("May.", 3.7, 4.1, interpolated=True)  # from 'in' to its segment's end
    assert sum(w.interpolated for w in words) == 2


def test_a_run_of_untimed_words_shares_the_gap_by_length():
    data = [
        {"word": "a", "start": 0.0, "end": 1.0},
        {"word": "xx"},
        {"word": "yyyy"},
        {"word": "b", "start": 2.5, "end": 3.0},
    ]
    words = parse_words(data)
    assert words[1] == Word("xx", 1.0, 1.5, True) and words[2] == Word("yyyy", 1.5, 2.5, True)


def test_untimed_words_at_the_edges():
    assert parse_words([{"word": "first"}, {"word": "b", "start": 1.0, "end": 2.0}])[0] == Word("first", 0.0, 1.0, True)
    last = parse_words([{"word": "a", "start": 0.0, "end": 1.0}, {"word": "last"}], duration_s=1.5)[1]
    assert last == Word("last", 1.0, 1.5, True)
    with pytest.raises(TimestampError, match=r"word 1 'last'.*no time and no timed word"):
        parse_words([{"word": "a", "start": 0.0, "end": 1.0}, {"word": "last"}])


def test_partial_times_keep_what_is_known():
    words = parse_words(
        [{"word": "a", "start": 0.0, "end": 1.0}, {"word": "b", "start": 1.2}, {"word": "c", "start": 2, "end": 3}]
    )
    assert words[1] == Word("b", 1.2, 2.0, True)


def test_parse_accepts_text_dicts_and_lists():
    data = json.loads((FIXTURES / "whisper.json").read_text())
    assert parse_words(data) == parse_words(json.dumps(data)) == parse_words(json.dumps(data).encode())
    assert [w.text for w in parse_words({"words": data["segments"][0]["words"]})] == TEXTS
    assert [w.text for w in parse_words({"word_segments": data["segments"][0]["words"]})] == TEXTS
    assert [w.text for w in parse_words(data["segments"])] == TEXTS  # a bare list of segments


def test_round_trip_through_plain_json_keeps_the_flag():
    words = load_words(FIXTURES / "whisperx.json", duration_s=4.2)
    again = parse_words(json.dumps(words_to_list(words)), duration_s=4.2)
    assert again == words == words_from_list(words_to_list(words))


@pytest.mark.parametrize(
    "words,duration,message",
    [
        (
            [Word("a", 0.0, 0.5), Word("b", 0.7, 0.6)],
            None,
            r"word 1 'b' \(start 0.700 s, end 0.600 s\): starts after it ends",
        ),
        ([Word("a", -0.2, 0.5)], None, r"word 0 'a'.*starts before 0 s"),
        ([Word("a", 0.0, 0.5), Word("b", 0.6, 3.2)], 3.0, r"word 1 'b'.*ends after the audio \(3.000 s long\)"),
        (
            [Word("a", 0.0, 0.5), Word("b", 0.6, 0.9), Word("c", 0.4, 1.0)],
            None,
            r"word 2 'c'.*starts before word 1 'b' ends",
        ),
        ([Word("a", 0.0, float("inf"))], None, "finite"),
    ],
)
def test_validation_names_the_word_and_the_problem(words, duration, message):
    with pytest.raises(TimestampError, match=message):
        validate_words(words, duration)


def test_validation_tolerates_transcriber_rounding():
    validate_words([Word("a", 0.0, 0.52), Word("b", 0.5, 1.0)])  # 20 ms overlap
    validate_words([Word("a", 0.0, 3.04)], 3.0)  # ends 40 ms after the audio
    with pytest.raises(TimestampError):
        validate_words([Word("a", 0.0, 3.04)], 3.0, tolerance_s=0.01)


@pytest.mark.parametrize(
    "data,message",
    [
        ({"segments": [{"text": " hi", "start": 0, "end": 1}]}, r"segment 0 \('hi'\) has no 'words'"),
        ({"language": "en"}, "expected 'segments', 'words' or 'word_segments'"),
        ([{"start": 0, "end": 1}], r"word 0: no 'word' or 'text'"),
        ([{"word": "  ", "start": 0, "end": 1}], "empty"),
        ([{"word": "a", "start": "soon", "end": 1}], r"word 0 'a': start must be a number"),
        ("0.1 0.2\n", r"line 1 '0.1 0.2': expected 'start end word'"),
        ("0.1 x hello\n", "times in seconds"),
        ("# only a comment\n", "no words found"),
        ([], "no words found"),
        (
            [{"word": "a", "start": 0, "end": 1}, {"word": "b", "start": 0.5, "end": 0.6}],
            "word 1 'b'.*starts before word 0",
        ),
        ([{"word": "a", "start": 0, "end": 1}, {"word": "b"}, {"word": "c", "start": 0.5, "end": 2}], "leave no gap"),
        (42, "unknown timestamp data"),
    ],
)
def test_bad_timestamp_data_is_refused_clearly(data, message):
    with pytest.raises(TimestampError, match=message):
        parse_words(data)


def test_load_words_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_words(tmp_path / "nope.json")
    bad = tmp_path / "bad.txt"
    bad.write_text("0.5 0.4 oops\n")
    with pytest.raises(TimestampError, match=r"bad.txt: word 0 'oops'.*starts after it ends"):
        load_words(bad)
    with pytest.raises(TimestampError, match="ends after the audio"):
        load_words(FIXTURES / "words.txt", duration_s=2.0)


@pytest.mark.parametrize(
    "text",
    [
        '[{"word": "a", "start": 0.1, "end": 0.4}, {"word": "cat", "start": NaN, "end": 0.9}]',
        '{"segments": [{"start": 0, "end": 1, "words": [{"word": "a", "start": 0.1, "end": 0.4}, '
        '{"word": " cat", "start": 0.5, "end": NaN}]}]}',
        "0.1 0.4 a\nnan 0.9 cat\n",
    ],
)
def test_a_nan_time_is_an_error_naming_the_file_the_word_and_its_index(tmp_path, text):
    path = tmp_path / ("words.txt" if text[0].isdigit() else "words.json")
    path.write_text(text)
    with pytest.raises(TimestampError, match=rf"{path.name}: word 1 'cat'.*(NaN|finite)"):
        load_words(path, duration_s=2.0)


def test_null_times_are_untimed_not_errors():
    words = parse_words(
        [
            {"word": "a", "start": 0.0, "end": 1.0},
            {"word": "b", "start": None, "end": None},
            {"word": "c", "start": 2, "end": 3},
        ]
    )
    assert words[1] == Word("b", 1.0, 2.0, interpolated=True)
