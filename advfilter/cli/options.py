"""Flags that set one config key, described by the config itself.

``setting("--max-swaps", key="filter.max_swaps")`` makes a flag whose help ends with
``(config: filter.max_swaps; default 3)``, whose type and choices come from the field's
annotation, and whose value (when given) lands in the command's dotted overrides, read back
with ``shortcuts(ctx)``. A flag whose choices are a registry's names lists them when help is
shown, so the command line never imports a component to start.
"""
from __future__ import annotations

import typing
from typing import Any, Callable

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from advfilter.core.config import Config

_META = "advfilter.shortcuts"


def field_of(schema: type[BaseModel], key: str) -> FieldInfo:
    """The pydantic field behind dotted ``key`` of ``schema`` (through nested sections)."""
    *parents, leaf = key.split(".")
    for part in parents:
        schema = schema.model_fields[part].annotation
    return schema.model_fields[leaf]


def default_of(schema: type[BaseModel], key: str) -> Any:
    """The built-in default of dotted ``key`` (a nested section's own default wins over its
    class's: ``sweep``'s ``finetune.max_steps`` is 200, not 0)."""
    value: Any = schema()
    for part in key.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def shown(value: Any) -> str:
    """A default as help shows it (none, true, a,b)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _click_type(field: FieldInfo) -> Any:
    annotation = field.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)])
    if len(args) == 1 and typing.get_origin(args[0]) is typing.Literal:  # Optional[Literal[...]]
        return click.Choice([str(a) for a in typing.get_args(args[0])])
    for kind in (bool, int, float):
        if annotation is kind or kind in args:
            return kind
    return str


class SettingOption(click.Option):
    """A click option bound to one config key (see the module docstring)."""

    def __init__(self, decls: list[str], key: str, schema: type[BaseModel], text: str,
                 convert: Callable[[Any], Any] | None, names: Callable[[], list[str]] | None,
                 **kwargs: Any) -> None:
        field = field_of(schema, key)
        text = text or field.description or ""
        self.key, self.schema, self.text, self.names = key, schema, text[:1].upper() + text[1:], names
        self.default_text = shown(default_of(schema, key))
        kwargs.setdefault("type", _click_type(field) if convert is None else str)
        if kwargs.get("is_flag"):
            kwargs.pop("type")
        convert = convert or (lambda v: v)

        def store(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
            if value is not None:
                ctx.meta.setdefault(_META, {})[key] = convert(value)

        super().__init__(decls, default=None, expose_value=False, callback=store, **kwargs)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        listed = f" One of: {', '.join(self.names())}." if self.names else ""
        text = f"{self.text.rstrip('.')}.{listed}" if self.text else listed.strip()
        self.help = f"{text} (config: {self.key}; default {self.default_text})".strip()
        return super().get_help_record(ctx)


def setting(*decls: str, key: str, text: str = "", schema: type[BaseModel] = Config,
            convert: Callable[[Any], Any] | None = None, names: Callable[[], list[str]] | None = None,
            **kwargs: Any) -> Callable[[Callable], Callable]:
    """A flag that sets ``key`` of ``schema``: ``text`` (default: the field's description) is
    its help; ``convert`` turns the given string into the config value (a comma list, ...);
    ``names`` lists its valid values (a registry) when help is shown."""
    return click.option(*decls, cls=SettingOption, key=key, schema=schema, text=text, convert=convert,
                        names=names, **kwargs)


def comma_list(text: str) -> list[str]:
    """``a, b`` → ["a", "b"]."""
    return [part.strip() for part in text.split(",") if part.strip()]


def shortcuts(ctx: click.Context) -> dict[str, Any]:
    """The dotted overrides the command's setting flags were given."""
    return dict(ctx.meta.get(_META, {}))
