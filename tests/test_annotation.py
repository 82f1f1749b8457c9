"""Human verification against a real Label Studio server on 127.0.0.1."""
from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from advfilter.cli import main
from advfilter.core.config import load_config
from advfilter.core.errors import ConfigError
from advfilter.core.layout import ANNOTATION_STATE, items, read_round
from advfilter.core.scores import latest_scores
from advfilter.pipeline.filter import adversarial_filter
from annotation.agreement import fleiss_kappa, verdict
from annotation.client import AnnotationError, Server
from annotation.labeling import NONSENSE, PLAUSIBLE, label_config, letters, make_task, read_answer
from annotation.quality import kappa_text
from annotation.revisions import read_revisions
from annotation.workflow import pull, push
from conftest import FAST_RUN

CONFIGS = Path(__file__).parent.parent / "configs"

# --- what annotators see, and what their answers mean -------------------------------------

ITEM = {"ctx": "A man walks in. He", "endings": ["sits.", "flies.", "sings.", "eats."], "label": 0,
        "context_id": "c1", "round": 2}


def test_label_config_is_valid_xml_with_one_text_and_flags_per_ending():
    root = ET.fromstring(label_config(4))
    names = {el.get("name") for el in root.iter()}
    assert {"context", "best", "ending_a", "ending_d", "flags_a", "flags_d"} <= names
    best = next(el for el in root.iter("Choices") if el.get("name") == "best")
    assert [c.get("value") for c in best] == letters(4)


def test_task_shows_every_ending_once_in_a_seeded_order_and_never_names_the_gold():
    task = make_task(ITEM, "run1", seed=0)
    shown = [task[f"ending_{x.lower()}"] for x in letters(4)]
    assert sorted(shown) == sorted(ITEM["endings"])
    assert [ITEM["endings"][i] for i in task["order"]] == shown
    assert "label" not in task and task["key"] == "run1:c1:2"
    assert make_task(ITEM, "run1", seed=0) == task


def test_answers_map_back_to_exported_endings_through_the_order():
    order = [2, 0, 3, 1]  # letter A shows exported ending 2, B shows 0, ...
    result = [{"from_name": "best", "value": {"choices": ["B"]}},
              {"from_name": "flags_a", "value": {"choices": [PLAUSIBLE]}},
              {"from_name": "flags_d", "value": {"choices": [NONSENSE]}}]
    assert read_answer(result, order) == {"choice": 0, "plausible": [2], "nonsense": [1]}


def answer(choice, plausible=(), nonsense=()):
    return {"choice": choice, "plausible": list(plausible), "nonsense": list(nonsense)}


@pytest.mark.parametrize("answers, decision", [
    ([answer(0), answer(0), answer(1)], "keep"),
    ([answer(0), answer(1), answer(2)], "reannotate"),            # no majority for the gold
    ([answer(0, [3]), answer(0, [3]), answer(0)], "reannotate"),  # a distractor most find plausible
    ([answer(0)], "reannotate"),                                  # fewer answers than asked for
    ([answer(1, nonsense=[0]), answer(0, nonsense=[0]), answer(1)], "drop"),
])
def test_verdicts(answers, decision):
    assert verdict("c", 1, 0, answers, needed=3).decision == decision


def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971)-style worked example: 10 items, 14 raters, 5 categories -> kappa 0.210
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                      [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                      [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=1e-3)
    assert fleiss_kappa(np.array([[3, 0], [0, 3]])) == pytest.approx(1.0)


# --- against the server ------------------------------------------------------------------


@pytest.fixture
def filtered(generated_run, copy_run):
    run = copy_run(generated_run)
    adversarial_filter(load_config(None, {**FAST_RUN, "filter.rounds": 1}), run)
    return run


@pytest.fixture
def server(label_studio, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.key)
    return Server(label_studio.url, attempts=2, backoff=0.1)


def test_push_creates_tasks_with_the_items_data_and_twice_creates_no_duplicates(filtered, server):
    first = push(filtered, server, limit=12, project="push twice", batch_size=5)
    again = push(filtered, server, limit=12, project="push twice", batch_size=5)
    tasks = server.tasks(first.project_id)
    assert (first.imported, again.imported, again.already_there, len(tasks)) == (12, 0, 12, 12)
    by_context = {r["context_id"]: r for r in items(filtered, 1)}
    for task in tasks:
        item = by_context[task.data["context_id"]]
        assert task.data["context"] == item["ctx"] and task.data["round"] == 1
        assert task.data["ending_a"] == item["endings"][task.data["order"][0]]


def test_push_order_ambiguous_sends_the_likeliest_second_answers_first(filtered, server):
    from advfilter.core.scores import latest_margins

    margins = latest_margins(filtered, 1)
    summary = push(filtered, server, limit=5, project="ambiguous first", order="ambiguous")
    pushed = {t.data["context_id"] for t in server.tasks(summary.project_id)}
    assert pushed == set(sorted(margins, key=margins.get, reverse=True)[:5])
    assert json.loads(filtered.path(ANNOTATION_STATE).read_text())["order"] == "ambiguous"


def annotate_as_people(server, project_id, votes_by_task):
    """Submit annotations through the SDK as annotators would: one per vote."""
    for task, votes in votes_by_task:
        for letter, flags in votes:
            result = [{"from_name": "best", "to_name": "context", "type": "choices",
                       "value": {"choices": [letter]}}]
            result += [{"from_name": f"flags_{x.lower()}", "to_name": f"ending_{x.lower()}",
                        "type": "choices", "value": {"choices": [PLAUSIBLE]}} for x in flags]
            server.client.annotations.create(id=task.id, result=result)


def letter_of(task, exported_index):
    return letters(4)[task.data["order"].index(exported_index)]


def test_pull_computes_agreement_and_decisions_and_export_keeps_only_verified(
        filtered, server, runner, tmp_path):
    summary = push(filtered, server, limit=4, project="pull", overlap=3)
    tasks = sorted(server.tasks(summary.project_id), key=lambda t: t.data["context_id"])
    gold = {r["context_id"]: r["label"] for r in items(filtered, 1)}
    g = [letter_of(t, gold[t.data["context_id"]]) for t in tasks]
    other = [letter_of(t, (gold[t.data["context_id"]] + 1) % 4) for t in tasks]
    annotate_as_people(server, summary.project_id, [
        (tasks[0], [(g[0], ""), (g[0], ""), (g[0], "")]),              # unanimous: keep
        (tasks[1], [(g[1], ""), (g[1], ""), (other[1], "")]),          # 2 of 3: keep
        (tasks[2], [(other[2], ""), (other[2], ""), (g[2], "")]),      # majority wrong: re-annotate
        (tasks[3], [(g[3], other[3]), (g[3], other[3]), (g[3], "")]),  # distractor plausible too
    ])
    result = pull(filtered, server)
    assert (result.tasks, result.annotated_tasks, result.annotations) == (4, 4, 12)
    assert result.decisions == {"keep": 2, "reannotate": 1, "revise": 1}  # the flagged one is replaced
    decisions = [json.loads(x) for x in filtered.path("decisions.jsonl").read_text().splitlines()]
    shares = {d["context_id"]: d["gold_share"] for d in decisions}
    assert shares[tasks[1].data["context_id"]] == pytest.approx(2 / 3)
    assert len(filtered.path("annotations.jsonl").read_text().splitlines()) == 12
    assert pull(filtered, server).new_annotations == 0  # a second pull adds nothing
    out = tmp_path / "verified.jsonl"
    cli = runner.invoke(main, ["export", "--run", str(filtered.root), "--out", str(out), "--verified-only"])
    assert cli.exit_code == 0, cli.output
    exported = {json.loads(x)["context_id"] for x in out.read_text().splitlines()}
    assert exported == {tasks[0].data["context_id"], tasks[1].data["context_id"]}


@pytest.mark.slow
def test_a_server_stopped_mid_push_fails_clearly_and_a_rerun_completes_without_duplicates(
        filtered, tmp_path, monkeypatch):
    from labelstudio import new_server

    own = new_server(tmp_path / "ls")
    own.start()
    try:
        monkeypatch.setenv("LABEL_STUDIO_API_KEY", own.key)
        server = Server(own.url, attempts=2, backoff=0.1)
        real_import = Server.import_tasks
        calls = []

        def import_then_stop(self, project_id, tasks):
            real_import(self, project_id, tasks)
            calls.append(len(tasks))
            if len(calls) == 1:
                own.stop()  # the server goes away after the first batch

        monkeypatch.setattr(Server, "import_tasks", import_then_stop)
        with pytest.raises(AnnotationError, match=f"Label Studio at {own.url} failed .* after 2 tries"):
            push(filtered, server, limit=15, project="stopped", batch_size=5)
        monkeypatch.setattr(Server, "import_tasks", real_import)
        own.start()
        summary = push(filtered, server, limit=15, project="stopped", batch_size=5)
        assert (summary.already_there, summary.imported) == (5, 10)
        keys = [t.data["key"] for t in server.tasks(summary.project_id)]
        assert len(keys) == len(set(keys)) == 15
    finally:
        own.stop()


def test_an_import_retried_after_a_lost_answer_adds_no_duplicates(filtered, server, monkeypatch):
    import httpx

    real = server.client.projects.import_tasks
    lost = []

    def accept_then_time_out(**kwargs):
        real(**kwargs)  # the server takes the batch ...
        if not lost:
            lost.append(1)
            raise httpx.ReadTimeout("timed out")  # ... and its answer never arrives

    monkeypatch.setattr(server.client.projects, "import_tasks", accept_then_time_out)
    summary = push(filtered, server, limit=6, project="lost answer", batch_size=3)
    keys = [t.data["key"] for t in server.tasks(summary.project_id)]
    assert lost and len(keys) == len(set(keys)) == 6


def test_a_pull_killed_between_its_files_is_finished_by_the_next_one(filtered, server, monkeypatch):
    import annotation.workflow as workflow

    cfg = load_config(CONFIGS / "default.yaml").annotate
    users = people(server, "killed", cfg.overlap)
    summary = push(filtered, server, limit=2, project="killed pull", overlap=cfg.overlap)
    task = sorted(server.tasks(summary.project_id), key=lambda t: t.data["context_id"])[0]
    gold = next(r for r in items(filtered, 1) if r["context_id"] == task.data["context_id"])["label"]
    answer(server, task, users, gold, [(gold + 1) % 4])
    real = workflow.write_jsonl

    def die_at_decisions(path, rows):
        if path.name == "decisions.jsonl":
            raise KeyboardInterrupt  # killed after annotations and revisions were written
        return real(path, rows)

    monkeypatch.setattr(workflow, "write_jsonl", die_at_decisions)
    with pytest.raises(KeyboardInterrupt):
        pull(filtered, server, cfg=cfg)
    monkeypatch.setattr(workflow, "write_jsonl", real)
    assert pull(filtered, server, cfg=cfg).open == 1  # the revised item waits for its new task
    revisions = filtered.path("revisions.jsonl").read_text().splitlines()
    assert len(revisions) == 1  # revised once, not again by the second pull
    assert push(filtered, server).imported == 1


def test_a_wrong_key_gets_a_one_line_hint_and_no_key_is_ever_printed_or_logged(
        filtered, label_studio, runner, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.key)
    outputs = []
    for args in (["annotate", "push", "--limit", "3", "--project", "secret check"],
                 ["annotate", "status"], ["annotate", "pull"]):
        result = runner.invoke(main, [args[0], args[1], "--run", str(filtered.root),
                                      "--url", label_studio.url, *args[2:]])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "0" * 40)
    refused = runner.invoke(main, ["annotate", "status", "--run", str(filtered.root),
                                   "--url", label_studio.url])
    assert refused.exit_code == 2 and "refused the API key (401)" in refused.stderr
    assert refused.stderr.count("\n") == 1
    everything = "".join(outputs) + refused.output + caplog.text
    assert label_studio.key not in everything and "0" * 40 not in everything


def test_a_careless_annotator_is_measured_dropped_and_reported(filtered, server, runner, tmp_path):
    summary = push(filtered, server, limit=6, project="quality", overlap=3)
    tasks = sorted(server.tasks(summary.project_id), key=lambda t: t.data["context_id"])
    gold = {r["context_id"]: r["label"] for r in items(filtered, 1)}
    users = [server.client.users.create(email=f"person{i}@example.com", username=f"person{i}").id
             for i in range(3)]
    for task in tasks:
        g = gold[task.data["context_id"]]
        for user, index in zip(users, (g, g, (g + 1) % 4)):  # the third one never picks the gold
            server.client.annotations.create(
                id=task.id, completed_by=user,
                result=[{"from_name": "best", "to_name": "context", "type": "choices",
                         "value": {"choices": [letter_of(task, index)]}}])
    cfg = load_config(None, {"annotate.min_annotator_accuracy": 0.5, "annotate.min_annotator_tasks": 3}).annotate
    result = pull(filtered, server, cfg=cfg)
    by_user = {a.user: a for a in result.annotators}
    assert [by_user[u].tasks for u in users] == [6, 6, 6]
    assert [by_user[u].accuracy for u in users] == [1.0, 1.0, 0.0]
    assert [by_user[u].agreement for u in users] == [1.0, 1.0, 0.0]
    assert [by_user[u].dropped for u in users] == [False, False, True]
    assert result.kappa == pytest.approx(1.0) and result.kappa_all < result.kappa
    assert (result.human_accuracy, result.human_answers) == (1.0, 12)
    saved = json.loads(filtered.path("annotators.json").read_text())
    assert saved["dropped"] == [users[2]] and saved["human_accuracy"] == 1.0
    report = runner.invoke(main, ["report", "--run", str(filtered.root), "--out", str(tmp_path / "r.png")])
    assert report.exit_code == 0, report.output
    assert "people    1.000  (12 answers" in report.stdout
    assert f"annotators {users[2]}" in report.stdout


def answer(server, task, users, choice_index, flag_indices=(), flag=PLAUSIBLE):
    """Each of ``users`` picks exported ending ``choice_index`` and flags ``flag_indices``."""
    result = [{"from_name": "best", "to_name": "context", "type": "choices",
               "value": {"choices": [letter_of(task, choice_index)]}}]
    result += [{"from_name": f"flags_{letter_of(task, i).lower()}", "to_name": f"ending_{letter_of(task, i).lower()}",
                "type": "choices", "value": {"choices": [flag]}} for i in flag_indices]
    for user in users:
        server.client.annotations.create(id=task.id, completed_by=user, result=result)


def people(server, tag, n=2):
    return [server.client.users.create(email=f"{tag}{i}@example.com", username=f"{tag}{i}").id for i in range(n)]


def test_a_flagged_distractor_is_replaced_reverified_and_exported_as_seen(filtered, server, runner, tmp_path):
    cfg = load_config(None, {"annotate.flag_votes": 2}).annotate
    users = people(server, "rev")
    summary = push(filtered, server, limit=2, project="revisions", overlap=2)
    first = sorted(server.tasks(summary.project_id), key=lambda t: t.data["context_id"])[0]
    cid = first.data["context_id"]
    before = next(r for r in items(filtered, 1) if r["context_id"] == cid)
    flagged_index = (before["label"] + 1) % 4
    answer(server, first, users, before["label"], [flagged_index])
    result = pull(filtered, server, cfg=cfg)
    assert result.decisions == {"revise": 1} and result.revised == 1
    rev = read_revisions(filtered, 1)[cid]
    [[old, new]] = rev.replaced
    assert rev.revision == 1 and old not in rev.negatives and new in rev.negatives
    scores = latest_scores(filtered, cid, 1)
    shown = set(read_round(filtered, 1).set_index("context_id").loc[cid, "negatives"])
    if scores is not None:  # the driver's favourite among the candidates never shown with it
        assert new == max((c for c in range(len(scores)) if c not in shown), key=lambda c: scores[c])
    again = push(filtered, server)  # the project, limit and overlap of the first push
    assert (again.project, again.items, again.imported) == ("revisions", 2, 1)  # the revised item, a new key
    assert json.loads(filtered.path("annotation.json").read_text())["overlap"] == 2
    task = next(t for t in server.tasks(summary.project_id) if t.data["key"].endswith(f"{cid}:1:1"))
    after = next(r for r in items(filtered, 1, revisions=read_revisions(filtered, 1)) if r["context_id"] == cid)
    assert before["endings"][flagged_index] not in after["endings"]
    answer(server, task, users, after["label"])
    result = pull(filtered, server, cfg=cfg)
    assert result.decisions == {"keep": 1} and result.open == 1  # the other item: no answers yet
    revisions_file = filtered.path("revisions.jsonl").read_text()
    assert pull(filtered, server, cfg=cfg).new_annotations == 0  # a second pull and push change nothing
    assert filtered.path("revisions.jsonl").read_text() == revisions_file
    assert push(filtered, server).imported == 0
    out = tmp_path / "verified.jsonl"
    cli = runner.invoke(main, ["export", "--run", str(filtered.root), "--out", str(out), "--verified-only"])
    assert cli.exit_code == 0, cli.output
    [exported] = [json.loads(x) for x in out.read_text().splitlines()]
    assert exported["context_id"] == cid and exported["endings"] == after["endings"]
    assert exported["revision"] == 1
    status = runner.invoke(main, ["annotate", "status", "--run", str(filtered.root), "--url", server.url])
    assert "items: 1 verified, 1 open, 1 revised" in status.stdout


def test_an_item_whose_pool_runs_out_is_dropped_and_counted(filtered, server):
    cfg = load_config(None, {"annotate.flag_votes": 1, "annotate.replace_flags": ["nonsense"]}).annotate
    users = people(server, "out", 1)
    push(filtered, server, limit=1, project="runs out")
    decisions = []
    for _ in range(2):  # 8 candidates: 3 shown, 3 replaced, then only 2 left for 3 flags
        state = json.loads(filtered.path("annotation.json").read_text())
        task = max(server.tasks(state["project_id"]), key=lambda t: t.data.get("revision", 0))
        item = next(r for r in items(filtered, 1, revisions=read_revisions(filtered, 1))
                    if r["context_id"] == task.data["context_id"])
        answer(server, task, users, item["label"], [i for i in range(4) if i != item["label"]], flag=NONSENSE)
        decisions.append(pull(filtered, server, cfg=cfg).decisions)
        push(filtered, server, limit=1, project="runs out")
    assert decisions == [{"revise": 1}, {"drop": 1}]
    decision = json.loads(filtered.path("decisions.jsonl").read_text().splitlines()[0])
    assert decision["reason"] == "pool exhausted"


def test_a_verified_export_after_more_filter_rounds_names_the_verified_round(filtered, server, runner, tmp_path):
    users = people(server, "ext", 1)
    summary = push(filtered, server, limit=1, project="extended", overlap=1)
    [task] = server.tasks(summary.project_id)
    gold = next(r for r in items(filtered, 1) if r["context_id"] == task.data["context_id"])["label"]
    answer(server, task, users, gold)
    pull(filtered, server)
    adversarial_filter(load_config(None, {**FAST_RUN, "filter.rounds": 2}), filtered)
    out = tmp_path / "v.jsonl"
    refused = runner.invoke(main, ["export", "--run", str(filtered.root), "--out", str(out), "--verified-only"])
    assert refused.exit_code == 2 and "pass --round 1" in refused.stderr and refused.stderr.count("\n") == 1
    assert not out.exists()
    named = runner.invoke(main, ["export", "--run", str(filtered.root), "--out", str(out), "--verified-only",
                                 "--round", "1"])
    assert named.exit_code == 0, named.output
    assert [json.loads(x)["context_id"] for x in out.read_text().splitlines()] == [task.data["context_id"]]


# --- the shipped defaults ----------------------------------------------------------------


def test_an_impossible_flag_count_is_refused_when_the_config_loads():
    with pytest.raises(ConfigError, match=r"annotate.flag_votes 2 > annotate.overlap 1"):
        load_config(None, {"annotate.overlap": 1, "annotate.flag_votes": 2})


def test_agreement_with_one_answer_per_task_says_why_there_is_none():
    assert kappa_text(float("nan")).startswith("not defined (one answer per task")
    assert kappa_text(None).startswith("not defined") and kappa_text(0.5) == "0.500"


def test_with_the_shipped_defaults_flagged_and_disputed_items_get_new_tasks(filtered, server):
    cfg = load_config(CONFIGS / "default.yaml").annotate
    users = people(server, "shipped", cfg.overlap)
    summary = push(filtered, server, limit=3, project="shipped defaults", overlap=cfg.overlap)
    flagged_task, disputed, kept = sorted(server.tasks(summary.project_id), key=lambda t: t.data["context_id"])
    gold = {r["context_id"]: r["label"] for r in items(filtered, 1)}
    g = [gold[t.data["context_id"]] for t in (flagged_task, disputed, kept)]
    answer(server, flagged_task, users, g[0], [(g[0] + 1) % 4])  # every annotator flags one distractor
    answer(server, disputed, users[:1], g[1])                     # one picks the gold,
    answer(server, disputed, users[1:], (g[1] + 2) % 4)           # the other does not
    answer(server, kept, users, g[2])
    result = pull(filtered, server, cfg=cfg)
    assert result.decisions == {"keep": 1, "reannotate": 1, "revise": 1}
    revisions = read_revisions(filtered, 1)
    assert revisions[flagged_task.data["context_id"]].replaced  # the flagged distractor is gone
    assert not revisions[disputed.data["context_id"]].replaced  # the disputed item: asked again
    assert push(filtered, server).imported == 2  # both get a new task; the kept one does not
    again = next(t for t in server.tasks(summary.project_id) if t.data["key"].endswith(
        f"{disputed.data['context_id']}:1:1"))
    answer(server, again, users, (g[1] + 2) % 4)  # asked again, still no majority for the gold
    result = pull(filtered, server, cfg=cfg)
    assert result.decisions.get("drop") == 1
