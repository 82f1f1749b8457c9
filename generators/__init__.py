"""Candidate-ending generators (LSTM LM, Hugging Face causal LMs), chosen by name."""
