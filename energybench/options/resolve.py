"""Adding options to argparse and pytest, and resolving a value: the command line, then the environment
variable, then ``[tool.energybench]`` of the nearest ``pyproject.toml``, then the default."""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from energybench.errors import ConfigError
from energybench.options.table import CONFIG_TABLE, OPTIONS, Option, option
from energybench.options.values import boolean, for_argparse


def add_to_argparse(parser: argparse.ArgumentParser | Any, names: Iterable[str], title: str | None = None) -> None:
    """Add the named options as ``--NAME`` (plus aliases); unset options stay ``None`` so ``resolve`` can fall
    back to the environment, the config file and the default."""
    target = parser.add_argument_group(title) if title else parser
    for name in names:
        opt = option(name)
        kwargs = _argument_kwargs(opt, opt.name)
        if not opt.flag and not opt.repeat:  # argparse checks the value: its one-line error names the flag
            kwargs["type"] = for_argparse(opt.parse)
        if opt.nargs:  # several values after one flag (``--fail-on a b``), checked one by one if declared
            kwargs["nargs"], kwargs["action"] = opt.nargs, "extend"
            if opt.each is not None:
                kwargs["type"] = for_argparse(opt.each)
        target.add_argument(opt.cli_flag, *opt.cli_aliases, **kwargs)


def add_to_pytest(group: Any, names: Iterable[str]) -> None:
    """Add the named options to a pytest option group as ``--energy-NAME`` (plus today's aliases), one value
    per flag: a test path after ``--energy-fail-on X`` stays a test path."""
    for name in names:
        opt = OPTIONS[name]
        group.addoption(opt.pytest_flag, *opt.pytest_aliases, **_argument_kwargs(opt, opt.pytest_dest))


def _argument_kwargs(opt: Option, dest: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dest": dest, "default": None, "help": opt.help}
    if opt.default not in (None, (), False) and not opt.in_config and not opt.flag and "default" not in opt.help:
        kwargs["help"] += f" (default {opt.default})"
    if opt.env:
        kwargs["help"] += f" [env {opt.env}]"
    if opt.flag:
        kwargs["action"] = "store_true"
    else:
        kwargs["metavar"] = opt.metavar or opt.name.upper()
        if opt.repeat:
            kwargs["action"] = "append"
    return kwargs


# ------------------------------------------------------------------------------------------------ resolving
@dataclass(frozen=True)
class Config:
    """The ``[tool.energybench]`` table in force (empty when there is none) and the file it came from."""

    values: Mapping[str, Any]
    path: Path | None = None


def find_config(start: str | os.PathLike[str] | None = None) -> Config:
    """The nearest ``pyproject.toml`` from ``start`` (default: the working directory) upwards that has a
    ``[tool.energybench]`` table; an unknown key there is a ``ConfigError`` naming the file."""
    here = Path(start or os.getcwd()).resolve()
    return _find_config(here)


@lru_cache(maxsize=16)
def _find_config(here: Path) -> Config:
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {candidate}: {exc}; fix the file or run from another directory") from None
        table = data.get("tool", {}).get("energybench")
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"[{CONFIG_TABLE}] in {candidate} must be a table of settings")
        allowed = sorted(n for n, o in OPTIONS.items() if o.in_config)
        unknown = sorted(set(table) - set(allowed) - {n.replace("_", "-") for n in allowed})
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in [{CONFIG_TABLE}] of {candidate}; "
                              f"known: {', '.join(allowed)}")
        return Config({k.replace("-", "_"): v for k, v in table.items()}, candidate)
    return Config({})


def resolve(name: str, given: Any = None, *, config: Config | None = None,
            environ: Mapping[str, str] | None = None, pytest: bool = False) -> Any:
    """The value of option ``name``: ``given`` (command line) if set, else its environment variable, else the
    config file, else the default; parsed and checked, with the source named in any error (``--energy-NAME``
    when ``pytest``)."""
    opt = option(name)
    env = os.environ if environ is None else environ
    if given is not None and given != [] and given is not False:
        if not opt.repeat and not isinstance(given, str):
            return given  # the command line's parser checked it already (``add_to_argparse``)
        return _parse(opt, given, opt.pytest_flag if pytest else opt.cli_flag)
    if opt.env and opt.env in env:
        return _parse(opt, env[opt.env], f"${opt.env}")
    cfg = config if config is not None else find_config()
    if opt.in_config and name in cfg.values:
        return _parse(opt, cfg.values[name], f"{name} in [{CONFIG_TABLE}] of {cfg.path}")
    return opt.default


def _parse(opt: Option, raw: Any, source: str) -> Any:
    try:
        if opt.flag:
            return boolean(raw)
        if opt.repeat:
            items = raw if isinstance(raw, list | tuple) else [raw]
            parts = [p.strip() if isinstance(p, str) else p  # TOML gives numbers too: gpu_index = [0, 1]
                     for item in items for p in (str(item).split(",") if opt.name in _COMMA_LISTS else [item])]
            return tuple(opt.parse(p) for p in parts if not (isinstance(p, str) and not p))
        return opt.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{source} {_show(raw)}: {exc}") from None


_COMMA_LISTS = ("fail_on", "sampler", "embodied", "subjects")


def _show(raw: Any) -> str:
    return f"= {raw!r}" if not isinstance(raw, list | tuple) else f"= {', '.join(map(repr, raw))}"


def resolve_all(names: Sequence[str], given: Mapping[str, Any], *, config: Config | None = None,
                pytest: bool = False) -> dict[str, Any]:
    """``resolve`` for several options at once; ``given`` maps option names to command-line values."""
    cfg = config if config is not None else find_config()
    return {name: resolve(name, given.get(name), config=cfg, pytest=pytest) for name in names}


def from_namespace(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """Resolved values of the named options from an argparse namespace (see ``add_to_argparse``)."""
    return resolve_all(names, {n: getattr(args, n, None) for n in names})


def from_pytest(config: Any, names: Sequence[str]) -> dict[str, Any]:
    """Resolved values of the named options from a pytest config; the config file is looked up from
    pytest's root directory, so a suite run from elsewhere still finds its project's settings."""
    cfg = find_config(getattr(config, "rootpath", None))
    return resolve_all(names, {n: config.getoption(OPTIONS[n].pytest_dest) for n in names}, config=cfg,
                       pytest=True)


# ------------------------------------------------------------------------------------------------ groups
def sampler_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved sampler options as the ``options`` mapping samplers take."""
    options: dict[str, Any] = {}
    if values.get("powercap_root"):
        options["powercap_root"] = values["powercap_root"]
    if values.get("gpu_index"):
        options["gpu_indices"] = list(values["gpu_index"])
    if values.get("tpu_watts") is not None:
        options["tpu_watts"] = values["tpu_watts"]
    if values.get("tpu_generation"):
        options["tpu_generation"] = values["tpu_generation"]
    if values.get("sampler"):
        options["samplers"] = list(values["sampler"])
    for key in ("drm_root", "amd_mode"):
        if values.get(key):
            options[key] = values[key]
    if values.get("gpu_share"):
        options["gpu_share"] = True
    if values.get("rapl_idle_w") is not None:
        options["rapl_idle_w"] = values["rapl_idle_w"]
    return options


def carbon_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved carbon options as ``Meter``/``resolve_provider`` keywords."""
    return {"region": values.get("region"), "intensity": values.get("intensity"),
            "intensity_csv": values.get("intensity_csv"), "pue": values.get("pue") or 1.0,
            "intensity_kind": values.get("intensity_kind"), "intensity_provider": values.get("intensity_provider"),
            "intensity_api_url": values.get("intensity_api_url")}
