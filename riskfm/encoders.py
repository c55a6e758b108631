"""One registry and one factory for every encoder in riskfm (ECG, CT, clinical).

Every encoder registers itself with :func:`register_encoder`; :func:`create_encoder` builds any of
them by name and optionally loads weights from a local checkpoint; :func:`list_encoders` and
:func:`encoder_info` answer "what is there" and "where do its weights come from".

The encoder contract (docs: architecture.md) is checked when an encoder is created. An encoder is an
``nn.Module`` with

* ``modality``: ``"ecg"``, ``"ct"`` or ``"clinical"``;
* ``feature_dim``: the width ``D`` of its output;
* ``input_spec``: a dataclass saying what preprocessing it needs (``ECGInputSpec``, ``CTInputSpec``,
  ``TextInputSpec``, ``TabularInputSpec``);
* ``forward(x) -> Tensor [B, D]``;
* ``gradcam_layer`` (only encoders with spatial / temporal maps): the module to hook for Grad-CAM.

Importing this module is cheap: torch and the modules defining the built-in encoders are imported
only when the registry is first queried (:func:`_ensure_builtin`), which also keeps the import graph
free of cycles (encoder modules import this module to register themselves).

Examples
--------
>>> from riskfm.encoders import create_encoder, list_encoders
>>> "resnet1d-small" in list_encoders("ecg")
True
>>> enc = create_encoder("resnet1d-small")
>>> enc.feature_dim, enc.input_spec.fs
(256, 500.0)
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import reprlib
import threading
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from riskfm.errors import CheckpointError, RiskfmError, checkpoint_load_error, did_you_mean

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported lazily
    from torch import nn

__all__ = [
    "MODALITIES",
    "CheckpointError",
    "EncoderArgumentError",
    "EncoderInfo",
    "FINETUNE_RECIPE_KEYS",
    "UnknownEncoderError",
    "check_encoder_kwargs",
    "create_encoder",
    "encoder_info",
    "encoder_input_spec",
    "input_spec_from_mapping",
    "list_encoders",
    "load_checkpoint_state_dict",
    "register_encoder",
]

#: The modalities an encoder may declare.
MODALITIES: tuple[str, ...] = ("ecg", "ct", "clinical")

#: Modules whose import registers the built-in encoders. Later encoders (ECGFounder, HuBERT-ECG,
#: CORA) are added here; third-party code can instead import its own module before create_encoder.
_BUILTIN_MODULES: tuple[str, ...] = (
    "riskfm.ecg.resnet1d",
    "riskfm.ecg.beatnet",
    "riskfm.ecg.registry",
    "riskfm.ct.cnn3d",
    "riskfm.ct.cora",
    "riskfm.clinical.text_encoder",
    "riskfm.clinical.tabular",
    "riskfm.clinical.lm_tokens",
)

# Prefixes that wrappers add to parameter names: DistributedDataParallel / DataParallel ("module.")
# and torch.compile ("_orig_mod."). A checkpoint saved from a wrapped model must load into a bare one.
_WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.")

# Remote schemes rejected up front: riskfm never reaches the network (architecture.md).
_REMOTE_SCHEMES: tuple[str, ...] = ("http://", "https://", "hf://", "s3://", "gs://", "ftp://")


# CheckpointError (a checkpoint file that cannot be read, is refused, or does not fit the encoder) lives
# in riskfm.errors and is re-exported here, where it was first defined.


class UnknownEncoderError(RiskfmError, KeyError, ValueError):
    """No encoder is registered under the name; the message lists close matches and every name.

    A ``KeyError`` (what unknown names raised before) and a ``ValueError`` (a wrong value in the
    user's config); ``str()`` is the plain message, not the quoted repr a ``KeyError`` prints.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class EncoderArgumentError(RiskfmError, ValueError):
    """The keyword arguments given for an encoder do not fit its constructor.

    Unknown or missing keywords, and a ``TypeError`` raised by the constructor, raise a subclass
    that is also a ``TypeError`` (what they raised before).
    """


class _EncoderKeywordError(EncoderArgumentError, TypeError):
    """An :class:`EncoderArgumentError` that is also a ``TypeError`` (unknown / missing keywords)."""


_SHORT = reprlib.Repr()
_SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxstring, _SHORT.maxother = 8, 8, 8, 60, 60


@dataclass(frozen=True)
class EncoderInfo:
    """One registry entry.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"resnet1d"``.
    modality : str
        ``"ecg"``, ``"ct"`` or ``"clinical"``.
    constructor : Callable[..., nn.Module]
        Class or function building the encoder from keyword arguments.
    default_kwargs : Mapping[str, Any]
        Keyword arguments this entry passes to ``constructor`` (the caller's kwargs override them).
    licence : str
        Licence of the weights (or of the architecture when the encoder starts untrained).
    source : str
        Where weights come from (paper, repository, local package); ``"riskfm"`` for baselines
        trained from scratch.
    description : str
        One line saying what the encoder is.
    aliases : tuple of str
        Other names ``create_encoder`` accepts for this entry.
    finetune_recipe : Mapping[str, Any] or None
        The published fine-tuning recipe of the weights (keys of :data:`FINETUNE_RECIPE_KEYS`:
        encoder ``lr`` and ``weight_decay``, ``train.optimizer`` and ``train.scheduler``), which
        ``riskfm train`` fills in wherever the config leaves them open; None when there is none.
    """

    name: str
    modality: str
    constructor: Callable[..., Any]
    default_kwargs: Mapping[str, Any] = field(default_factory=dict)
    licence: str = ""
    source: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()
    finetune_recipe: Mapping[str, Any] | None = None


#: What a fine-tuning recipe may set: encoder ``lr`` / ``weight_decay``, ``train.optimizer`` /
#: ``train.scheduler``.
FINETUNE_RECIPE_KEYS: tuple[str, ...] = ("lr", "weight_decay", "optimizer", "scheduler")

_REGISTRY: dict[str, EncoderInfo] = {}
_ALIASES: dict[str, str] = {}
_BUILTIN_LOCK = threading.RLock()
_builtin_loaded = False


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def register_encoder(
    name: str,
    *,
    modality: str,
    licence: str,
    source: str,
    description: str,
    default_kwargs: Mapping[str, Any] | None = None,
    aliases: tuple[str, ...] | list[str] = (),
    finetune_recipe: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an encoder class (or factory function) under ``name`` (a decorator).

    The decorated object is returned unchanged, so decorators can be stacked to register one class
    under several names with different ``default_kwargs`` (e.g. a full and a small variant).

    Parameters
    ----------
    name : str
        Registry name (lower case, no spaces by convention).
    modality : {"ecg", "ct", "clinical"}
        The modality the encoder reads.
    licence, source, description : str
        Provenance of the weights and a one-line description (shown by :func:`encoder_info`).
    default_kwargs : Mapping, optional
        Keyword arguments passed to the constructor unless the caller overrides them.
    aliases : sequence of str, optional
        Extra names accepted by :func:`create_encoder` (not listed by :func:`list_encoders`).
    finetune_recipe : Mapping, optional
        The weights' published fine-tuning recipe (see :attr:`EncoderInfo.finetune_recipe`),
        readable without building the network.

    Raises
    ------
    ValueError
        If ``modality`` is unknown, ``name`` / an alias is already taken by another constructor, or
        the recipe has a key outside :data:`FINETUNE_RECIPE_KEYS`.

    Examples
    --------
    >>> from torch import nn
    >>> @register_encoder("doc-demo", modality="ecg", licence="MIT", source="riskfm",
    ...                   description="demo")
    ... class Demo(nn.Module):
    ...     pass
    >>> "doc-demo" in list_encoders()
    True
    >>> _ = _unregister("doc-demo")
    """
    if modality not in MODALITIES:
        raise ValueError(f"register_encoder({name!r}): modality must be one of {MODALITIES}, got {modality!r}")
    if not name or not isinstance(name, str):
        raise ValueError(f"register_encoder: name must be a non-empty string, got {name!r}")
    aliases = tuple(aliases)
    unknown = sorted(set(finetune_recipe or {}) - set(FINETUNE_RECIPE_KEYS))
    if unknown:
        raise ValueError(f"register_encoder({name!r}): finetune_recipe keys {unknown} are not among "
                         f"{list(FINETUNE_RECIPE_KEYS)}")

    def decorator(constructor: Callable[..., Any]) -> Callable[..., Any]:
        for key in (name, *aliases):
            taken = _REGISTRY.get(key) or _REGISTRY.get(_ALIASES.get(key, ""))
            # Re-registering the same entry (a module reloaded) is harmless; anything else is a name
            # clash that would make create_encoder ambiguous.
            if taken is not None and (
                taken.name != name or _qualified(taken.constructor) != _qualified(constructor)
            ):
                raise ValueError(
                    f"register_encoder: name {key!r} is already registered for "
                    f"{_qualified(taken.constructor)} (entry {taken.name!r})"
                )
        _REGISTRY[name] = EncoderInfo(
            name=name,
            modality=modality,
            constructor=constructor,
            default_kwargs=MappingProxyType(dict(default_kwargs or {})),
            licence=licence,
            source=source,
            description=description,
            aliases=aliases,
            finetune_recipe=None if finetune_recipe is None else MappingProxyType(dict(finetune_recipe)),
        )
        for alias in aliases:
            _ALIASES[alias] = name
        return constructor

    return decorator


def _unregister(name: str) -> EncoderInfo | None:
    """Remove an entry and its aliases (for tests and docs); returns the removed entry."""
    info = _REGISTRY.pop(name, None)
    if info is not None:
        for alias in info.aliases:
            _ALIASES.pop(alias, None)
    return info


def _ensure_builtin() -> None:
    """Import the modules that register the built-in encoders (once, thread-safe)."""
    global _builtin_loaded
    if _builtin_loaded:
        return
    with _BUILTIN_LOCK:
        if _builtin_loaded:
            return
        for module in _BUILTIN_MODULES:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ImportError(
                    f"riskfm.encoders: importing the built-in encoder module {module!r} failed: {exc}"
                ) from exc
        _builtin_loaded = True


def list_encoders(modality: str | None = None) -> list[str]:
    """Names of the registered encoders, sorted; optionally only those of one modality.

    Parameters
    ----------
    modality : {"ecg", "ct", "clinical"}, optional

    Returns
    -------
    list of str
        Registry names (aliases are not listed).
    """
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"list_encoders: modality must be one of {MODALITIES} or None, got {modality!r}")
    _ensure_builtin()
    return sorted(n for n, info in _REGISTRY.items() if modality is None or info.modality == modality)


def _resolve(name: str) -> EncoderInfo:
    _ensure_builtin()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _ALIASES:
        return _REGISTRY[_ALIASES[name]]
    known = sorted([*_REGISTRY, *_ALIASES])
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownEncoderError(f"unknown encoder {name!r}.{hint} Registered encoders: {', '.join(sorted(_REGISTRY))}")


def encoder_info(name: str) -> EncoderInfo:
    """Return the registry entry of ``name`` (or of an alias).

    Raises
    ------
    UnknownEncoderError
        If no encoder has that name (a ``KeyError`` and a ``ValueError``); the message lists close
        matches and all names.
    """
    return _resolve(name)


def _strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        stripped = key
        changed = True
        while changed:  # wrappers nest, e.g. "module._orig_mod.conv.weight"
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if stripped.startswith(prefix):
                    stripped = stripped[len(prefix):]
                    changed = True
        if stripped in out:
            raise CheckpointError(f"checkpoint has key {stripped!r} both with and without a wrapper prefix")
        out[stripped] = value
    return out


def load_checkpoint_state_dict(path: str | os.PathLike, *, weights_only: bool = True) -> dict[str, Any]:
    """Read a state dict from a LOCAL checkpoint file.

    Accepts a bare state dict, or a dict holding it under ``"state_dict"`` or ``"model"`` (the common
    training-checkpoint layouts, e.g. ECGFounder's ``.pth``), saved with ``torch.save``; or a
    ``.safetensors`` file. Wrapper prefixes ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) are
    stripped.

    Parameters
    ----------
    path : str or PathLike
        Local file. URLs and hub ids are refused: riskfm never downloads.
    weights_only : bool, default True
        Passed to ``torch.load``: only tensors and plain containers are unpickled, so a malicious file
        cannot run code. ``False`` is an explicit opt-in for trusted legacy pickles holding other
        objects.

    Returns
    -------
    dict
        Parameter name -> tensor.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or is not a file.
    CheckpointError
        If the file holds no recognisable state dict, or ``weights_only=True`` refuses its content.
    """
    import torch

    text = os.fspath(path)
    if text.lower().startswith(_REMOTE_SCHEMES):
        raise ValueError(f"checkpoint must be a local file path; riskfm never downloads (got {text!r})")
    file = Path(text).expanduser()
    if not file.exists():
        raise FileNotFoundError(f"checkpoint file not found: {file}")
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint path is not a file: {file}")

    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(file), device="cpu")
        except (PermissionError, FileNotFoundError, IsADirectoryError):
            raise
        except Exception as exc:  # safetensors raises SafetensorError on a bad header / short file
            raise CheckpointError(f"{file}: not a readable safetensors file (truncated or corrupt?)") from exc
    else:
        try:
            with warnings.catch_warnings():  # plain pickles trigger a protocol warning before failing
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                obj = torch.load(file, map_location="cpu", weights_only=weights_only)
        except (PermissionError, FileNotFoundError, IsADirectoryError):
            raise  # the system's message names the file (a torch reader's OSError(22) means truncated)
        except Exception as exc:  # torch raises UnpicklingError / RuntimeError / EOFError ... at length
            raise checkpoint_load_error(
                file, exc, weights_only=weights_only, kind="torch checkpoint",
                refused_hint="pass weights_only=False (in a run config: `weights_only: false` under the encoder)",
            ) from exc

    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{file}: expected a state dict (name -> tensor), or a dict holding one under 'state_dict' "
            f"or 'model'; got {type(obj).__name__}"
        )
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{file}: state dict entries must be tensors; {len(bad)} are not, e.g. {bad[:5]}"
        )
    return _strip_prefixes(obj)


def encoder_entries(path: str | os.PathLike, anchor: str, *, what: str, hint: str,
                    weights_only: bool = True) -> dict[str, Any]:
    """Return the state-dict entries of a checkpoint that sit where its encoder does, keys made relative.

    Checkpoints wrap an encoder under different prefixes (``model.``, ``net.encoder.``, ...); the
    encoder is located by ``anchor``, the key suffix of its first weight.

    Parameters
    ----------
    path : str or Path
        Checkpoint file (:func:`riskfm.encoders.load_checkpoint_state_dict`).
    anchor : str
        Key suffix of a weight every such encoder has, e.g. ``"blocks.0.conv.weight"``.
    what, hint : str
        For the error: what was looked for, and what kind of checkpoint would have it.
    weights_only : bool, default True
        Passed to ``torch.load``.

    Returns
    -------
    dict of str -> torch.Tensor
        Every entry whose key starts with the anchor's prefix, keyed by the rest of the key (so
        ``anchor`` itself is one of the keys).

    Raises
    ------
    CheckpointError
        When no key ends in ``anchor``.
    """
    state = load_checkpoint_state_dict(path, weights_only=weights_only)
    key = next((k for k in state if k.endswith(anchor)), None)
    if key is None:
        raise CheckpointError(f"{path}: no {what} found (no key ending in {anchor!r}); is this {hint}?")
    prefix = key[: -len(anchor)]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _load_into(model: nn.Module, state_dict: Mapping[str, Any], *, strict: bool, source: str) -> None:
    own = model.state_dict()
    shape_errors = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if shape_errors:
        # Never load a tensor of another shape: it means another architecture or another width.
        raise CheckpointError(
            f"{source}: {len(shape_errors)} tensors have the wrong shape, e.g. {shape_errors[:5]}"
        )
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{source}: checkpoint does not match the encoder (strict=True): "
            f"{len(missing)} missing keys, e.g. {missing[:5]}; "
            f"{len(unexpected)} unexpected keys, e.g. {unexpected[:5]}. "
            "Pass strict=False to load the matching subset."
        )
    if missing or unexpected:
        warnings.warn(
            f"{source}: loaded with strict=False; {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys ignored (e.g. {unexpected[:3]})",
            stacklevel=3,
        )
    model.load_state_dict(state_dict, strict=False)


def _check_contract(model: Any, info: EncoderInfo) -> None:
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"encoder {info.name!r}: constructor returned {type(model).__name__}, not an nn.Module")
    problems = []
    if not isinstance(getattr(model, "feature_dim", None), int) or model.feature_dim <= 0:
        problems.append(f"feature_dim must be a positive int (got {getattr(model, 'feature_dim', None)!r})")
    if getattr(model, "input_spec", None) is None:
        problems.append("input_spec is missing")
    if getattr(model, "modality", None) != info.modality:
        problems.append(f"modality is {getattr(model, 'modality', None)!r} but registered as {info.modality!r}")
    if problems:
        raise TypeError(f"encoder {info.name!r} breaks the encoder contract: " + "; ".join(problems))


#: input_spec fields whose numbers must be positive (a rate, a length, a voxel size, a grid).
_POSITIVE_SPEC_FIELDS: frozenset[str] = frozenset({"fs", "n_samples", "spacing", "shape", "max_length"})


def _type_text(hint: Any) -> str:
    """``float``, ``tuple[float, float] | None``: an annotation as a user reads it."""
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _fits(value: Any, hint: Any) -> bool:
    """Whether a value read from a config (YAML scalars, lists, mappings) fits a type annotation.

    Lists stand for tuples (YAML has no tuples); an int fits ``float``; a bool fits neither ``int``
    nor ``float``. Annotations it does not know are left to the constructor (True).
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint in (int, float):
        return isinstance(value, int if hint is int else (int, float)) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    if origin is tuple:
        if not isinstance(value, tuple | list):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args, strict=True))
    if hint is dict or origin is dict:
        return isinstance(value, Mapping)
    return True


def _numbers(value: Any) -> list[float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value]
    if isinstance(value, tuple | list):
        return [n for v in value for n in _numbers(v)]
    return []


def input_spec_from_mapping(modality: str, values: Mapping[str, Any], *, owner: str = "input_spec") -> Any:
    """Build a modality's input-spec dataclass from a mapping (a YAML config, a JSON file), checked.

    Parameters
    ----------
    modality : {"ecg", "ct"}
        ``"ecg"`` builds an :class:`~riskfm.ecg.spec.ECGInputSpec`, ``"ct"`` a
        :class:`~riskfm.ct.spec.CTInputSpec`.
    values : Mapping
        Field name -> value; lists become tuples (``bandpass_hz: [0.67, 40]``).
    owner : str, default "input_spec"
        What to call the mapping in messages (e.g. ``"encoder 'resnet1d': input_spec"``).

    Returns
    -------
    ECGInputSpec or CTInputSpec

    Raises
    ------
    EncoderArgumentError
        ``values`` is not a mapping, names a field the spec does not have (the message lists
        them), gives a value of the wrong type (``fs: "abc"``) or a non-positive rate, length,
        spacing or shape.

    Examples
    --------
    >>> input_spec_from_mapping("ecg", {"fs": 250, "n_samples": 2500}).seconds
    10.0
    """
    import dataclasses

    if modality == "ecg":
        from riskfm.ecg.spec import ECGInputSpec as spec_cls
    elif modality == "ct":
        from riskfm.ct.spec import CTInputSpec as spec_cls
    else:
        raise EncoderArgumentError(f"{owner}: give it as an input-spec object for {modality} encoders, not a mapping")
    if not isinstance(values, Mapping):
        raise EncoderArgumentError(f"{owner} must be a mapping of {spec_cls.__name__} fields "
                                   f"(e.g. {{fs: 500, n_samples: 5000}}), got {_SHORT.repr(values)}")
    hints = typing.get_type_hints(spec_cls)
    fields = [f.name for f in dataclasses.fields(spec_cls)]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        named = ", ".join(f"{k!r}{did_you_mean(str(k), fields, n=1)}" for k in unknown)
        raise EncoderArgumentError(f"{owner}: unknown key(s) {named}; allowed: {', '.join(fields)}")
    for key, value in values.items():
        if not _fits(value, hints[key]):
            raise EncoderArgumentError(f"{owner}.{key} must be {_type_text(hints[key])}, got {_SHORT.repr(value)}")
        if key in _POSITIVE_SPEC_FIELDS and any(n <= 0 for n in _numbers(value)):
            raise EncoderArgumentError(f"{owner}.{key} must be positive, got {_SHORT.repr(value)}")

    def as_tuple(v: Any) -> Any:  # YAML lists -> the tuples the frozen spec expects
        return tuple(as_tuple(x) for x in v) if isinstance(v, list) else v

    return spec_cls(**{k: as_tuple(v) for k, v in values.items()})


def _check_input_spec(info: EncoderInfo, spec: Any) -> Any:
    """``input_spec`` as given to an encoder: a mapping is built into the spec, an object must be one."""
    import dataclasses

    owner = f"encoder {info.name!r}: input_spec"
    if isinstance(spec, Mapping):
        return input_spec_from_mapping(info.modality, spec, owner=owner)
    if spec is not None and not dataclasses.is_dataclass(spec):
        raise EncoderArgumentError(f"{owner} must be a mapping of its fields (e.g. {{fs: 500, n_samples: 5000}}) "
                                   f"or an input-spec object, got {_SHORT.repr(spec)}")
    return spec


def _constructor_parameters(constructor: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """Return the keyword-passable parameters of ``constructor``.

    None when it takes ``**kwargs`` or hides its signature (builtins, C extensions).
    """
    try:
        signature = inspect.signature(constructor)
    except (TypeError, ValueError):  # builtins / C extensions without a signature
        return None
    params = []
    for p in signature.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return None  # a factory forwarding **kwargs: its class checks them when called
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            params.append(p)
    return params


def _checked_kwargs(info: EncoderInfo, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` checked against the constructor's signature, with an ``input_spec`` mapping converted."""
    kwargs = dict(kwargs)
    params = _constructor_parameters(info.constructor)
    if params is not None:
        accepted = [p.name for p in params]
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            named = ", ".join(f"{k!r}{did_you_mean(k, accepted, n=1)}" for k in unknown)
            plural = "s" if len(unknown) > 1 else ""
            raise _EncoderKeywordError(
                f"encoder {info.name!r}: unknown keyword argument{plural} {named}; "
                f"it accepts: {', '.join(accepted) or '(none)'}"
            )
    if "input_spec" in kwargs:
        kwargs["input_spec"] = _check_input_spec(info, kwargs["input_spec"])
    return kwargs


def check_encoder_kwargs(name: str, kwargs: Mapping[str, Any] | None = None) -> EncoderInfo:
    """Check an encoder name and the NAMES of its keyword arguments without building the encoder.

    Cheap (no weights, no network): the command line calls it on a run config before loading any
    data, so a typo fails in a second rather than after the cohort is read. Values are checked only
    when the encoder is built (:func:`create_encoder`); required keywords may still be filled in by
    the caller (e.g. ``n_features`` of ``tabular-mlp``).

    Returns
    -------
    EncoderInfo
        The registry entry of ``name``.

    Raises
    ------
    UnknownEncoderError
        No encoder has that name (the message lists close matches and every name).
    EncoderArgumentError
        A keyword the constructor does not take (the message names it, a close match and the
        keywords it accepts), or an ``input_spec`` that is not a mapping / spec object, or a
        mapping with unknown keys or values of the wrong type (``fs: "abc"``).
    """
    info = _resolve(name)
    _checked_kwargs(info, kwargs or {})
    return info


def create_encoder(
    name: str,
    checkpoint: str | os.PathLike | None = None,
    *,
    weights_only: bool = True,
    strict: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered encoder, optionally loading weights from a local checkpoint.

    Parameters
    ----------
    name : str
        Registry name or alias (see :func:`list_encoders`).
    checkpoint : str or PathLike, optional
        Local ``torch.save`` file (bare state dict, or a dict holding ``"state_dict"`` / ``"model"``)
        or ``.safetensors`` file. ``module.`` / ``_orig_mod.`` prefixes are stripped.
    weights_only : bool, default True
        Safe unpickling (tensors and containers only). ``False`` is an explicit opt-in for trusted
        legacy pickles.
    strict : bool, default True
        Require the checkpoint keys to match the encoder's exactly. With ``False`` the matching
        subset is loaded and a warning lists what was missing / ignored. Shapes must always match.
    **kwargs
        Passed to the constructor, overriding the entry's ``default_kwargs``.

    Returns
    -------
    nn.Module
        The encoder (in training mode, like any freshly built module).

    Raises
    ------
    UnknownEncoderError
        Unknown name (a ``KeyError`` and a ``ValueError``); the message lists close matches and all
        registered names.
    EncoderArgumentError
        A ``ValueError``: a keyword the constructor does not take or a required one that is missing
        (checked before building; these are also ``TypeError``), an ``input_spec`` that is not a
        mapping of its fields with values of the right types, or the constructor rejected a
        keyword's type or value (``encoder X: invalid keyword arguments {...}: <its message>``; a
        ``TypeError``, ``ValueError``, ``AttributeError``, ``LookupError`` or ``ArithmeticError``
        raised while building from the caller's keywords).
    FileNotFoundError
        ``checkpoint`` does not exist.
    CheckpointError
        The checkpoint cannot be read or is refused by ``weights_only`` loading, or its content or
        keys do not fit (the message lists a few offending keys).
    """
    info = _resolve(name)
    kwargs = _checked_kwargs(info, kwargs)
    merged = {**info.default_kwargs, **kwargs}
    params = _constructor_parameters(info.constructor)
    missing = [p.name for p in params or () if p.default is inspect.Parameter.empty and p.name not in merged]
    if missing:
        raise _EncoderKeywordError(
            f"encoder {info.name!r}: missing required keyword argument{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)}"
        )
    try:
        model = info.constructor(**merged)
    except RiskfmError:
        raise  # already says what is wrong (e.g. a CheckpointError from weights the constructor loads)
    except (TypeError, ValueError) as exc:
        cls = _EncoderKeywordError if isinstance(exc, TypeError) else EncoderArgumentError
        raise cls(f"encoder {info.name!r}: invalid keyword arguments {_SHORT.repr(kwargs)}: {exc}") from exc
    except (AttributeError, LookupError, ArithmeticError) as exc:
        if not kwargs:
            raise  # the entry's own defaults fail: a bug in riskfm, not the user's arguments
        # A value of the wrong kind met deep inside the constructor ("'str' object has no attribute
        # ...", an empty list indexed, a zero width divided by): still the caller's keyword values.
        raise EncoderArgumentError(f"encoder {info.name!r}: invalid keyword arguments {_SHORT.repr(kwargs)}: "
                                   f"{type(exc).__name__}: {exc}") from exc
    _check_contract(model, info)
    if checkpoint is not None:
        state_dict = load_checkpoint_state_dict(checkpoint, weights_only=weights_only)
        if hasattr(model, "adapt_checkpoint"):  # e.g. drop a released classification head not kept
            state_dict = model.adapt_checkpoint(state_dict)
        _load_into(model, state_dict, strict=strict, source=f"{os.fspath(checkpoint)} -> {info.name}")
    return model



def encoder_input_spec(name: str, **kwargs: Any) -> Any:
    """Return the input spec an encoder built with ``kwargs`` would have, without building it.

    What the data pipeline needs (``riskfm prepare``, the ECG store) is the spec, not 30.8M
    initialised weights: an ``input_spec`` keyword (or the entry's default one) is returned checked,
    else the constructor's ``default_input_spec(**kwargs)`` when it has one (every built-in ECG and
    CT encoder does); only an encoder without either is built to read its spec. No checkpoint is
    loaded: weights never change a spec.

    Parameters
    ----------
    name : str
        Registry name or alias.
    **kwargs
        Constructor keywords, as for :func:`create_encoder` (an ``input_spec`` mapping included).

    Returns
    -------
    ECGInputSpec, CTInputSpec, TextInputSpec or TabularInputSpec
        The encoder's ``input_spec``.

    Raises
    ------
    UnknownEncoderError, EncoderArgumentError
        As :func:`create_encoder`.
    """
    info = _resolve(name)
    merged = {**info.default_kwargs, **_checked_kwargs(info, kwargs)}
    if merged.get("input_spec") is not None:
        return _check_input_spec(info, merged["input_spec"])
    factory = getattr(info.constructor, "default_input_spec", None)
    if factory is not None:
        return factory(**merged)
    return create_encoder(name, **kwargs).input_spec
