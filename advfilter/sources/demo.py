"""The embedded demo corpus: ActivityNet-format captions composed from our own phrase bank.

Every phrase below was written for this project; no caption is copied from a public data
set. ``make_corpus`` composes videos deterministically from a seed: an opening sentence
that introduces a person at a place, then 2–4 steps of one activity in their usual order,
sometimes a closing step shared by all activities. The shipped file is
``advfilter/data/demo_activitynet.json`` (``python -m advfilter.sources.demo --out FILE`` rewrites it).
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

DEMO_CORPUS = Path(__file__).parent.parent / "data" / "demo_activitynet.json"

# (label, places, props, steps in their usual order). {p} = the person's possessive pronoun.
ACTIVITIES: list[tuple[str, list[str], list[str], list[str]]] = [
    ("Jumping rope", ["in a school gym", "on a paved driveway", "in a small garage"],
     ["jump rope", "blue rope"],
     ["holds the handles of the {prop} at {p} sides", "starts skipping over the {prop} {adv}",
      "crosses {p} arms while the rope keeps turning", "jumps on one foot for a few turns",
      "speeds up until the {prop} is a blur", "trips on the rope and laughs about it",
      "drops the {prop} on the floor and catches {p} breath"]),
    ("Washing a dog", ["in a bathtub", "in a sunny backyard", "next to a plastic tub"],
     ["garden hose", "hose"],
     ["lifts a small dog into the water", "wets the fur of the dog with the {prop}",
      "rubs soap into the back of the dog {adv}", "scrubs behind the ears of the dog",
      "rinses the suds away with clean water", "wraps the dog in a large towel",
      "lets the dog shake off the water on the grass"]),
    ("Making a sandwich", ["in a bright kitchen", "at a wooden counter", "in a cramped dorm room"],
     ["bread knife", "sharp knife"],
     ["lays two slices of bread on a cutting board", "spreads butter on the bread {adv}",
      "stacks cheese and ham on one slice", "adds lettuce and a few slices of tomato",
      "presses the second slice on top", "cuts the sandwich in half with the {prop}",
      "takes a big bite of the sandwich"]),
    ("Playing the violin", ["on a concert stage", "in a living room", "in a quiet studio"],
     ["violin", "fiddle"],
     ["tucks the {prop} under {p} chin", "tightens the hair of the bow {adv}",
      "draws the bow across the strings", "plays a slow melody with {p} eyes closed",
      "moves {p} fingers quickly along the neck", "finishes the piece with a long note",
      "lowers the {prop} and bows to the audience"]),
    ("Shoveling snow", ["in front of a house", "on a long driveway", "along a city sidewalk"],
     ["snow shovel", "wide shovel"],
     ["pushes the {prop} into a thick pile of snow", "throws the snow to the side {adv}",
      "clears a narrow path toward the street", "stops to wipe sweat from {p} forehead",
      "scrapes the ice off the steps", "spreads salt from a small bucket over the path",
      "leans the shovel against the wall of the house"]),
    ("Painting a fence", ["in a backyard", "beside a country road", "in front of a cottage"],
     ["can of white paint", "can of green paint"],
     ["opens a {prop} with a screwdriver", "stirs the paint with a wooden stick",
      "dips the brush into the paint {adv}", "paints the top of each board with long strokes",
      "covers the lower boards while kneeling on the grass", "steps back to look at the fence",
      "cleans the brush in a bucket of water"]),
    ("Playing beach volleyball", ["on a sandy beach", "at a crowded beach court", "near the ocean"],
     ["volleyball", "white ball"],
     ["tosses the {prop} into the air to serve", "hits the ball over the net {adv}",
      "dives into the sand to keep the ball up", "sets the ball for a teammate near the net",
      "jumps high and spikes the ball down", "celebrates the point with a high five",
      "brushes the sand off {p} knees"]),
    ("Knitting", ["on a comfortable sofa", "beside a warm fireplace", "on a train seat"],
     ["ball of yarn", "basket of yarn"],
     ["pulls a length of wool from a {prop}", "loops the yarn around one needle",
      "knits a row of stitches {adv}", "counts the stitches along the needle",
      "holds up a half finished scarf", "switches to a brighter color of yarn",
      "ties off the last stitch and cuts the yarn"]),
    ("Changing a tire", ["on the side of a highway", "in a parking lot", "in a dusty garage"],
     ["tire iron", "lug wrench"],
     ["loosens the lug nuts with a {prop}", "slides a car jack under the frame of the car",
      "raises the car until the wheel is off the ground", "pulls the flat tire off the hub",
      "lifts the spare tire onto the bolts", "tightens each nut {adv} in a star pattern",
      "lowers the car and puts the tools in the trunk"]),
    ("Surfing", ["at a rocky beach", "far out in the ocean", "near a long pier"],
     ["surfboard", "yellow board"],
     ["paddles out on a {prop} through the waves", "sits on the board and waits for a wave",
      "turns around and paddles {adv} toward the shore", "pops up onto {p} feet as the wave lifts",
      "rides along the face of the wave", "falls off the board into the water",
      "carries the {prop} back up the sand"]),
    ("Baking cookies", ["in a cozy kitchen", "at a flour covered table", "in a bakery"],
     ["mixing bowl", "large bowl"],
     ["cracks two eggs into a {prop}", "stirs sugar and butter together {adv}",
      "folds chocolate chips into the dough", "scoops small balls of dough onto a baking tray",
      "slides the tray into the hot oven", "takes the golden cookies out with a mitt",
      "puts the cookies on a plate to cool"]),
    ("Playing the drums", ["in a garage", "on a dark stage", "in a music store"],
     ["drum kit", "black drum kit"],
     ["sits down behind a {prop}", "taps the sticks together to count in",
      "plays a steady beat on the snare {adv}", "hits the cymbal at the end of each bar",
      "plays a fast roll across the toms", "spins one stick between {p} fingers",
      "ends with a loud crash and raises the sticks"]),
    ("Mowing the lawn", ["in a front yard", "in a large garden", "beside a farmhouse"],
     ["lawn mower", "red mower"],
     ["pulls the cord to start the {prop}", "pushes the mower in a straight line {adv}",
      "turns at the end of the row and comes back", "empties the grass bag into a bin",
      "trims the edges around a flower bed", "shuts off the engine of the {prop}",
      "rolls the mower back into the shed"]),
    ("Brushing teeth", ["in a small bathroom", "in front of a mirror", "at a hotel sink"],
     ["toothbrush", "blue toothbrush"],
     ["squeezes a line of paste onto a {prop}", "wets the brush under the tap",
      "brushes the front teeth in small circles {adv}", "moves the brush to the back teeth",
      "spits the foam into the sink", "rinses {p} mouth with a cup of water",
      "smiles at the mirror to check the teeth"]),
    ("Rock climbing", ["at an indoor climbing gym", "on a steep cliff", "on a bouldering wall"],
     ["chalk bag", "small chalk bag"],
     ["dips {p} hands into a {prop}", "grabs the first hold and pulls up",
      "reaches for a small hold above {p} head", "places a foot on a narrow ledge {adv}",
      "clips the rope into an anchor", "reaches the top of the wall and looks down",
      "lets go and is lowered back to the ground"]),
    ("Ironing clothes", ["in a laundry room", "in a bedroom", "beside an open closet"],
     ["steam iron", "iron"],
     ["sets a wrinkled shirt on the ironing board", "fills the {prop} with water from a cup",
      "presses the iron along the collar {adv}", "irons the sleeves one at a time",
      "turns the shirt over to iron the back", "hangs the shirt on a plastic hanger",
      "unplugs the iron and folds up the board"]),
    ("Playing soccer", ["on a muddy field", "in a city park", "in a large stadium"],
     ["soccer ball", "ball"],
     ["dribbles the {prop} down the side of the field", "passes the ball to a teammate {adv}",
      "runs past two defenders toward the goal", "kicks the ball hard at the net",
      "watches the goalkeeper dive for the ball", "celebrates with the team after the goal",
      "jogs back to the middle of the field"]),
    ("Decorating a cake", ["in a bakery", "at a kitchen island", "in a pastry class"],
     ["spatula", "flat knife"],
     ["sets a round cake on a turning stand", "spreads white frosting over the top with a {prop}",
      "smooths the sides while turning the stand {adv}", "fills a piping bag with pink icing",
      "pipes small roses along the edge", "sprinkles colorful candy over the cake",
      "writes a name across the cake in chocolate"]),
    ("Kayaking", ["on a calm lake", "down a fast river", "along a rocky coast"],
     ["kayak", "green kayak"],
     ["pushes the {prop} off the shore", "climbs into the seat and grabs the paddle",
      "paddles {adv} toward the middle of the lake", "steers the kayak around a large rock",
      "rides through a set of small rapids", "rests the paddle across {p} lap",
      "pulls the kayak up onto the beach"]),
    ("Doing push ups", ["on a gym mat", "in a living room", "on a grassy hill"],
     ["exercise mat", "yoga mat"],
     ["gets down on the {prop} on {p} hands and toes", "lowers {p} chest toward the floor {adv}",
      "pushes back up with {p} arms straight", "counts each push up out loud",
      "switches to push ups on {p} knees", "collapses onto the mat after the last one",
      "wipes {p} face with a towel"]),
    ("Cleaning windows", ["outside an office building", "in a living room", "on a shop front"],
     ["squeegee", "rubber squeegee"],
     ["sprays soapy water on the glass from a bottle", "scrubs the window with a soft sponge",
      "wipes the water away with a {prop} {adv}", "dries the corners with a cloth",
      "climbs a short ladder to reach the top", "moves on to the next window",
      "checks the glass for streaks in the sunlight"]),
    ("Grooming a horse", ["in a stable", "beside a wooden fence", "in a dusty paddock"],
     ["curry comb", "stiff brush"],
     ["ties the horse to a post with a rope", "rubs the coat of the horse with a {prop}",
      "brushes the mane {adv} with long strokes", "lifts a front hoof and cleans it with a hoof pick",
      "combs the knots out of the tail", "pats the neck of the horse",
      "leads the horse back into its stall"]),
    ("Bowling", ["at a bowling alley", "in a busy arcade", "on a neon lit lane"],
     ["bowling ball", "heavy ball"],
     ["picks up a {prop} from the return rack", "lines up at the start of the lane",
      "takes four steps and swings the ball back", "releases the ball {adv} down the lane",
      "watches the ball curve toward the pins", "jumps in the air after a strike",
      "sits down next to friends to wait for a turn"]),
    ("Planting flowers", ["in a garden bed", "on a sunny balcony", "beside a front porch"],
     ["small trowel", "garden trowel"],
     ["kneels down and digs a hole with a {prop}", "takes a flower out of its plastic pot",
      "loosens the roots with {p} fingers", "sets the plant in the hole {adv}",
      "pushes soil around the stem", "pours water over the new plants from a watering can",
      "stands up and brushes dirt off {p} gloves"]),
]

PEOPLE = [("man", "his"), ("woman", "her"), ("boy", "his"), ("girl", "her"),
          ("young man", "his"), ("young woman", "her"), ("older man", "his"),
          ("older woman", "her"), ("teenage boy", "his"), ("teenage girl", "her")]
LOOKS = ["in a red shirt", "wearing a black cap", "with long curly hair", "in a gray hoodie",
         "wearing sunglasses", "in a striped sweater", "with a green backpack", "in a yellow jacket"]
OPENINGS = ["is standing {place}", "is seen {place} talking to the camera",
            "walks into view {place}", "is getting ready {place}",
            "smiles at the camera while standing {place}"]
ADVERBS = ["slowly", "carefully", "quickly", "again", "with great care", "very fast", ""]
LINKS = ["", "", "", "Then ", "Next, ", "After that, ", "Finally, ", "Afterwards "]
CLOSINGS = ["waves at the camera and walks out of the frame",
            "smiles and gives a thumbs up to the person filming",
            "talks to the camera for a while as the video ends",
            "takes a short break and drinks from a bottle of water"]


def _video(rng: random.Random) -> tuple[str, list[str]]:
    label, places, props, steps = rng.choice(ACTIVITIES)
    noun, pos = rng.choice(PEOPLE)
    look = rng.choice(LOOKS)
    prop = rng.choice(props)

    def fill(template: str) -> str:
        text = template.format(prop=prop, p=pos, adv=rng.choice(ADVERBS), place=rng.choice(places))
        return " ".join(text.split())

    article = "An" if noun[0] in "aeiou" else "A"
    sentences = [fill(f"{article} {noun} {look} {rng.choice(OPENINGS)}.")]
    chosen = sorted(rng.sample(range(len(steps)), rng.randint(2, 4)))
    for n, index in enumerate(chosen):
        subject = rng.choice([f"the {noun}", f"the {noun}", "she" if pos == "her" else "he",
                              f"the {noun} {look}"])
        link = rng.choice(LINKS) if n else ""
        subject = f"{link}{subject}"
        sentences.append(fill(f"{subject[0].upper()}{subject[1:]} {steps[index]}."))
    if rng.random() < 0.3:
        sentences.append(fill(f"The {noun} {rng.choice(CLOSINGS)}."))
    return label, sentences


def make_corpus(videos: int = 360, seed: int = 13) -> dict[str, dict]:
    """An ActivityNet Captions-format dict of ``videos`` composed videos (3–6 captions each)."""
    rng = random.Random(seed)
    corpus = {}
    for n in range(videos):
        label, sentences = _video(rng)
        t, stamps = 0.0, []
        for _ in sentences:
            length = round(rng.uniform(3.0, 20.0), 2)
            stamps.append([round(t, 2), round(t + length, 2)])
            t += length + round(rng.uniform(0.0, 2.0), 2)
        corpus[f"v_demo{n:05d}"] = {
            "duration": round(t + 1.0, 2), "timestamps": stamps,
            "sentences": [f" {s}" for s in sentences],  # ActivityNet's captions start with a space
            "activity_label": label,
        }
    return corpus


def main() -> None:
    """``python -m advfilter.sources.demo --videos N --seed S --out FILE`` writes a demo corpus."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--videos", type=int, default=360)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=DEMO_CORPUS)
    args = parser.parse_args()
    args.out.write_text(json.dumps(make_corpus(args.videos, args.seed), indent=1) + "\n")


if __name__ == "__main__":
    main()
