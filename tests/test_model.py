"""embeddings.model.Encoder runs the library's encode loop without its per-call set-up: the
numbers must stay those of SentenceTransformer.encode, to the bit."""

import numpy as np
import pytest
import torch

from embeddings.model import Encoder

TEXTS = [
    "Why did Russia remove the Taliban from its list of terrorist organisations?",
    "Kabulov",
    "When did the Soviet Union break apart?",
    "hello",
    "Russia's official recognition of the IEA authorities in July 2025 set a precedent that some "
    "Central Asian states and even China might follow.",
    "Is the Russian embassy in Kabul still open?",
    "",
    "Кабул и Москва",
]


@pytest.fixture
def small_batches(encoder, monkeypatch) -> Encoder:
    """Batches of 3: the texts span several forward passes, sorted longest first, as the library does."""
    monkeypatch.setattr(encoder, "batch_size", 3)
    return encoder


def test_encode_gives_the_librarys_vectors_to_the_bit(small_batches):
    library = small_batches.model.encode(TEXTS, batch_size=3, normalize_embeddings=True)
    assert np.array_equal(small_batches.encode(TEXTS), library)
    alone = small_batches.model.encode(TEXTS[1:2], normalize_embeddings=True)  # unpadded: not library[1]'s bits
    assert np.array_equal(small_batches.encode(TEXTS[1:2]), alone)
    assert small_batches.encode(TEXTS).dtype == np.float32 and small_batches.encode([]).shape == (0, 384)


def test_forward_gives_the_librarys_outputs_per_text_in_the_given_order(small_batches):
    library = small_batches.model.encode(TEXTS, batch_size=3, output_value=None)
    ours = small_batches.forward(TEXTS)
    assert len(ours) == len(TEXTS)
    for theirs, mine in zip(library, ours, strict=True):
        assert theirs.keys() == mine.keys()
        for name, value in theirs.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, mine[name]), name
            else:
                assert value == mine[name], name


def test_the_model_is_set_up_once_not_on_every_encode(encoder, monkeypatch):
    """SentenceTransformer.encode walks every module (eval) and every parameter (its device) per
    call; the encoder did both when it loaded the model."""
    assert not encoder.model.training

    def refuse(*args, **kwargs):
        raise AssertionError("per-call set-up ran")

    monkeypatch.setattr(encoder.model, "eval", refuse)
    monkeypatch.setattr(encoder.model, "_resolve_inference_device", refuse)
    assert encoder.encode(TEXTS[:2]).shape == (2, 384)
    assert len(encoder.encode_with_tokens(TEXTS[:2])) == 2
