"""Each corpus reader: what it yields from good input, and a one-line InputError for bad input."""
from __future__ import annotations

import json

import pytest

from advfilter.core.errors import InputError
from advfilter.sources import Item, Story, sources
from conftest import anet_video


def read(source, path):
    return list(sources.get(source)(path))


# --- activitynet -------------------------------------------------------------------------

def test_activitynet_orders_sentences_by_start_time_and_strips_them(write):
    path = write("train.json", {"v_1": {"duration": 9.0, "timestamps": [[5, 9], [0, 5]],
                                        "sentences": [" second one.", " first one."]}})
    [story] = read("activitynet", path)
    assert story.sentences == ("first one.", "second one.")


def test_activitynet_keeps_video_id_file_and_optional_label(write):
    path = write("val_1.json", {"v_2": anet_video("A man runs.", label="Running")})
    [story] = read("activitynet", path)
    assert story == Story("activitynet", "v_2", "Running", ("A man runs.",), "val_1.json")


@pytest.mark.parametrize("content, record, message", [
    ('{"v_1": {"timestamps": [[0, 1]], "sentences": [" a"]}', "line 1", "malformed JSON"),
    ('[1, 2]', None, "expected a JSON object"),
    ({"v_1": {"timestamps": [[0, 1]]}}, "video v_1", "missing key 'sentences'"),
    ({"v_1": {"sentences": ["a"]}}, "video v_1", "missing key 'timestamps'"),
    ({"v_1": {"timestamps": [[0, 1]], "sentences": "a"}}, "video v_1", "non-empty list"),
    ({"v_1": {"timestamps": [[0, 1]], "sentences": [3]}}, "video v_1", "must be a string"),
    ({"v_1": {"timestamps": [[0, 1]], "sentences": ["  "]}}, "video v_1", "sentences[0] is empty"),
    ({"v_1": {"timestamps": [[0, 1]], "sentences": []}}, "video v_1", "non-empty list"),
    ({"v_1": {"timestamps": [[0, 1]], "sentences": ["a", "b"]}}, "video v_1",
     "1 timestamps but 2 sentences"),
    ({"v_1": {"timestamps": [["x", 1]], "sentences": ["a"]}}, "video v_1", "timestamps[0]"),
    ({"v_1": {"duration": "long", "timestamps": [[0, 1]], "sentences": ["a"]}}, "video v_1",
     "duration must be a number"),
    ({"v_1": [1]}, "video v_1", "must be a JSON object"),
])
def test_activitynet_bad_input_names_file_and_record(write, content, record, message):
    path = write("bad.json", content)
    with pytest.raises(InputError) as err:
        read("activitynet", path)
    assert (err.value.path, err.value.record) == (str(path), record)
    assert message in err.value.message and "\n" not in str(err.value)


def test_unreadable_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read file"):
        read("activitynet", tmp_path / "missing.json")


def test_non_utf8_file_is_an_input_error(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"v": "caf\xe9"}')
    with pytest.raises(InputError, match="not valid UTF-8"):
        read("activitynet", path)


# --- lsmdc -------------------------------------------------------------------------------

LSMDC = (
    "0001_Some_Film_00.00.10.000-00.00.12.500\t00.00.10.000\t00.00.12.500\tSOMEONE opens a door.\n"
    "0001_Some_Film_00.00.01.000-00.00.04.000\t00.00.01.000\t00.00.04.000\tSOMEONE walks in.\n"
    "0002_Other_Film_00.01.00.000-00.01.02.000\t00.01.00.000\t00.01.02.000\tRain falls.\n"
)


def test_lsmdc_groups_clips_by_movie_in_time_order(write):
    stories = read("lsmdc", write("lsmdc.csv", LSMDC))
    assert [(s.video_id, s.sentences) for s in stories] == [
        ("0001_Some_Film", ("SOMEONE walks in.", "SOMEONE opens a door.")),
        ("0002_Other_Film", ("Rain falls.",)),
    ]


@pytest.mark.parametrize("line, message", [
    ("clip\t1.0\tSOMEONE sits.", "at least 4 tab-separated fields"),
    ("clip_00.00.01.000-00.00.02.000\tsoon\t2.0\tSOMEONE sits.", "is not a time"),
    ("clip_00.00.01.000-00.00.02.000\t1.0\t2.0\t ", "sentence is empty"),
])
def test_lsmdc_bad_line_names_its_number(write, line, message):
    path = write("lsmdc.csv", LSMDC + line + "\n")
    with pytest.raises(InputError, match=message) as err:
        read("lsmdc", path)
    assert err.value.record == "line 4"


# --- jsonl -------------------------------------------------------------------------------

def test_jsonl_reads_stories_and_ready_items(write):
    path = write("data.jsonl", "\n".join([
        json.dumps({"id": 7, "sentences": ["One.", "Two."], "activity_label": "Steps"}),
        "",
        json.dumps({"id": "x", "video_id": "vid", "ctx_a": "A.", "ctx_b": "The man",
                    "ending": "leaves."}),
    ]))
    story, item = read("jsonl", path)
    assert story == Story("jsonl", "7", "Steps", ("One.", "Two."), "data.jsonl")
    assert item == Item("jsonl", "x", "vid", "", "A.", "The man", "leaves.", "data.jsonl")


def test_a_ready_jsonl_item_may_have_an_empty_ctx_b_as_wikihow_items_do(write):
    path = write("items.jsonl", json.dumps({"id": 1, "ctx_a": "How to bake bread. Mix the flour.", "ctx_b": "",
                                            "ending": "Knead the dough for ten minutes."}) + "\n")
    [item] = list(sources.get("jsonl")(path))
    assert item.ctx_b == "" and item.ending == "Knead the dough for ten minutes."


@pytest.mark.parametrize("line, message", [
    ('{"id": 1, "sentences": ["a"]', "malformed JSON"),
    ('["a"]', "expected a JSON object"),
    ('{"sentences": ["a"]}', "missing key 'id'"),
    ('{"id": 1}', "needs either 'sentences' or all of ctx_a, ctx_b, ending"),
    ('{"id": 1, "ctx_a": "a", "ctx_b": "b", "ending": ""}', "ending is empty"),
    ('{"id": [1], "sentences": ["a"]}', "id must be a string or an integer"),
])
def test_jsonl_bad_line_names_its_number(write, line, message):
    path = write("data.jsonl", '{"id": 0, "sentences": ["ok."]}\n' + line + "\n")
    with pytest.raises(InputError, match=message) as err:
        read("jsonl", path)
    assert err.value.record == "line 2"


# --- hellaswag / swag --------------------------------------------------------------------

HS = {"ind": 4, "activity_label": "Baking", "ctx_a": "A man mixes dough.", "ctx_b": "he",
      "ctx": "A man mixes dough. he", "endings": ["flies.", "bakes it.", "sings.", "sits."],
      "label": 1, "source_id": "activitynet~v_9", "split": "val", "split_type": "indomain"}


def test_hellaswag_gold_is_the_labelled_ending(write):
    [item] = read("hellaswag", write("hs.jsonl", json.dumps(HS)))
    assert (item.ending, item.video_id, item.activity_label) == ("bakes it.", "activitynet~v_9", "Baking")


@pytest.mark.parametrize("change, message", [
    ({"label": 4}, "does not index endings"),
    ({"label": None}, "does not index endings"),
    ({"endings": "x"}, "non-empty list"),
    ({"ctx_b": 3}, "ctx_b must be a string"),
])
def test_hellaswag_bad_record(write, change, message):
    with pytest.raises(InputError, match=message):
        read("hellaswag", write("hs.jsonl", json.dumps({**HS, **change})))


def test_hellaswag_missing_key(write):
    record = {k: v for k, v in HS.items() if k != "label"}
    with pytest.raises(InputError, match="missing key 'label'"):
        read("hellaswag", write("hs.jsonl", json.dumps(record)))


SWAG_HEADER = ",video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n"


def test_swag_gold_is_the_labelled_ending(write):
    path = write("train.csv", SWAG_HEADER + '0,lsmdc1,12,"A b. He","A b.",He,gold,x.,y.,z.,w.,2\n')
    [item] = read("swag", path)
    assert (item.ctx_a, item.ctx_b, item.ending, item.video_id) == ("A b.", "He", "z.", "lsmdc1")


def test_swag_missing_columns_name_them(write):
    with pytest.raises(InputError, match="missing columns: label") as err:
        read("swag", write("train.csv", SWAG_HEADER.replace(",label", "")))
    assert err.value.record == "header"


def test_swag_bad_label_names_the_line(write):
    path = write("train.csv", SWAG_HEADER + '0,v,1,"s","s1",He,gold,a.,b.,c.,d.,7\n')
    with pytest.raises(InputError, match="label '7'") as err:
        read("swag", path)
    assert err.value.record == "line 2"


def test_every_reader_module_registers_its_reader_by_its_own_name():
    import pkgutil

    import advfilter.sources as package

    helpers = {"base", "release", "demo"}  # what readers are made of, and the demo corpus writer
    modules = {m.name for m in pkgutil.iter_modules(package.__path__)} - helpers
    assert set(sources.names()) == modules
