"""Multiple-choice discriminators used by Adversarial Filtering, chosen by name."""
