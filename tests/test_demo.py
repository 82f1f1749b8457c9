"""The embedded demo corpus is ours, reproducible and big enough for the full pipeline."""
from __future__ import annotations

import json

from advfilter.sources.demo import DEMO_CORPUS, make_corpus


def test_shipped_demo_corpus_is_what_the_composer_writes():
    assert json.loads(DEMO_CORPUS.read_text()) == make_corpus()


def test_demo_corpus_has_300_videos_of_20_activities_with_3_to_6_captions():
    corpus = make_corpus()
    assert len(corpus) >= 300
    assert len({video["activity_label"] for video in corpus.values()}) >= 20
    assert {len(video["sentences"]) for video in corpus.values()} <= {3, 4, 5, 6}
