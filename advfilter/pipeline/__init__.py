"""The stages that build a run directory, in the order they run: contexts (and the sentence
cut), generate (candidate shards on Ray), filter (Algorithm 1, pool scoring), export, report."""
