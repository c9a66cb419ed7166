"""Changing a config's settings: configs are frozen dataclasses whose defaults are declared once, and a
caller (the CLI, the demo, a benchmark) names only the settings it changes."""

import dataclasses


def with_overrides(config, **overrides):
    """`config` with the given fields replaced; None means "not given". `<field>_<name>` reaches `name` of the
    config nested in `field`: `model_width=64` sets `config.model.width`."""
    given = {name: value for name, value in overrides.items() if value is not None}
    for field in dataclasses.fields(config):
        prefix = f"{field.name}_"
        nested = {name.removeprefix(prefix): value for name, value in given.items() if name.startswith(prefix)}
        if nested and dataclasses.is_dataclass(getattr(config, field.name)):
            given = {name: value for name, value in given.items() if not name.startswith(prefix)}
            given[field.name] = with_overrides(getattr(config, field.name), **nested)
    return dataclasses.replace(config, **given)


def override_names(config) -> set[str]:
    """Every name `with_overrides` takes for `config`: its fields, and `<field>_<name>` for nested configs."""
    names = set()
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            names |= {f"{field.name}_{name}" for name in override_names(value)}
        names.add(field.name)
    return names
