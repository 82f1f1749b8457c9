"""The subject / verb-phrase split of the second sentence, on a real spaCy parser."""
from __future__ import annotations

import pytest

from advfilter.split import analyse


def split(nlp, sentence):
    parsed = analyse(nlp(sentence))
    if parsed.split is None:
        return None
    return sentence[:parsed.split].strip(), sentence[parsed.split:].strip()


@pytest.mark.parametrize("sentence, subject, ending", [
    ("The man picks up the ball and throws it.", "The man", "picks up the ball and throws it."),
    # passive: the auxiliary belongs to the verb phrase
    ("The ball is thrown by the boy.", "The ball", "is thrown by the boy."),
    ("A man is seen speaking to the camera while holding a rake.", "A man",
     "is seen speaking to the camera while holding a rake."),
    # coordination of verb phrases stays whole in the ending
    ("The girl stands up, waves and walks off the stage.", "The girl",
     "stands up, waves and walks off the stage."),
    # prepositional modifiers are part of the subject
    ("The woman in the red shirt jumps over the bar.", "The woman in the red shirt",
     "jumps over the bar."),
    # leading adverbials stay before the split, as in HellaSwag's ctx_b
    ("Then, the girl runs down the track quickly.", "Then, the girl", "runs down the track quickly."),
    ("Afterwards the man does not stop talking to the camera.", "Afterwards the man",
     "does not stop talking to the camera."),
    ("He lifts the heavy box onto the truck.", "He", "lifts the heavy box onto the truck."),
])
def test_split_subject_from_verb_phrase(nlp, sentence, subject, ending):
    assert split(nlp, sentence) == (subject, ending)


@pytest.mark.parametrize("sentence", [
    "A close up of a bowl of soup.",      # no verb, no subject
    "Pick up the brush and paint.",       # imperative: no subject
])
def test_no_subject_gives_no_split(nlp, sentence):
    assert split(nlp, sentence) is None


def test_two_sentences_are_counted_and_not_split(nlp):
    parsed = analyse(nlp("The man sits down. He opens a book on the table."))
    assert (parsed.sentences, parsed.split) == (2, None)


def test_word_counts_leave_out_punctuation(nlp):
    parsed = analyse(nlp("The boy, smiling, jumps over the wall."))
    assert (parsed.words, parsed.ending_words) == (7, 4)
