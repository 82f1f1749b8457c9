"""Multiple-choice discriminators for Adversarial Filtering; importing registers them all."""
from discriminators import bert, bilstm, bow, cnn, ensemble, mlp  # noqa: F401  (registration)
from discriminators.bank import Bank
from discriminators.base import Discriminator, discriminators, fit, score

__all__ = ["Bank", "Discriminator", "discriminators", "fit", "score"]
