"""Multiple-choice discriminators for Adversarial Filtering; importing registers them all."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from advfilter.core.errors import ConfigError
from advfilter.core.registry import import_modules
from discriminators.bank import Bank
from discriminators.base import Discriminator, DiscriminatorConfig, discriminators, fit, score
from discriminators.ensemble import Ensemble

import_modules(__name__, __path__)


def configured(names: list[str],
               sections: dict[str, dict[str, Any]]) -> list[tuple[str, type[Discriminator], Any]]:
    """(name, class, validated config) of each chosen discriminator.

    ``sections`` is ``filter.discriminator``: one mapping per discriminator name. An unknown
    name (chosen or configured) or key is a ConfigError naming ``filter.discriminator.<name>.<key>``.
    """
    for name in sections:
        if name not in discriminators.names():
            raise ConfigError(f"filter.discriminator.{name}: unknown discriminator; choose one of: "
                              f"{', '.join(discriminators.names())}")
    out = []
    for name in names:
        cls = discriminators.get(name)
        try:
            out.append((name, cls, cls.Config.model_validate(sections.get(name) or {})))
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"filter.discriminator.{name}.{key}: {first['msg']}") from None
    return out


def check_sections(sections: dict[str, dict[str, Any]]) -> None:
    """Validate every configured section, chosen or not (for config files)."""
    configured(list(sections), sections)


__all__ = ["Bank", "Discriminator", "DiscriminatorConfig", "Ensemble", "check_sections",
           "configured", "discriminators", "fit", "score"]
