"""How good the items are, measured from outside the loop: probes and contamination checks."""
