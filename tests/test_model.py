"""embeddings.model.Encoder runs the model without the library's per-call set-up, its texts
packed several to a row (embeddings/packing.py): the numbers must stay those of
SentenceTransformer.encode, to float rounding packed and to the bit in the library's batches."""

import numpy as np
import pytest
import torch

from embeddings.model import Encoder, packable
from embeddings.packing import balance_rows, layout_cost, pack, row_layout

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
    """The library's batches of 3: the texts span several forward passes, sorted longest first."""
    monkeypatch.setattr(encoder, "batch_size", 3)
    monkeypatch.setattr(encoder, "packs", False)
    return encoder


def test_packed_rows_give_the_librarys_vectors_to_float_rounding(encoder):
    """Every text, its pooled vector and each of its token vectors, whatever row it shares."""
    assert encoder.packs and packable(encoder.model)
    library = encoder.model.encode(TEXTS, output_value=None)
    packed = encoder.packed_forward(TEXTS)
    assert len(packed) == len(TEXTS)
    for theirs, mine in zip(library, packed, strict=True):
        tokens = theirs["token_embeddings"][theirs["attention_mask"].bool()]
        assert mine["token_embeddings"].shape == tokens.shape
        assert torch.allclose(mine["token_embeddings"], tokens, atol=5e-5)
        assert torch.allclose(mine["sentence_embedding"], theirs["sentence_embedding"], atol=1e-6)
        assert bool(mine["attention_mask"].all())
    vectors = encoder.encode(TEXTS)
    assert vectors.dtype == np.float32 and np.allclose(vectors, encoder.model.encode(TEXTS), atol=1e-6)
    # questions of many lengths: some rows hold several texts (else nothing here was packed)
    lengths = [len(encoder.model.tokenizer(t)["input_ids"]) for t in TEXTS]
    assert any(len(row) > 1 for row in row_layout(lengths))


def test_the_encoder_packs_only_a_model_it_knows_how_to_feed(encoder):
    assert Encoder.__init__.__kwdefaults__["pack"] is True
    unpooled = torch.nn.Sequential(encoder.model[0])  # no mean pooling: not this model's vectors
    assert not packable(unpooled)


def test_balanced_rows_hold_every_text_once_and_even():
    lengths = [26, 5, 5, 5, 5, 5, 12, 14, 9]
    rows = balance_rows(lengths, 3)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    fills = [sum(lengths[i] for i in row) for row in rows]
    assert sum(fills) == 86 and max(fills) <= 31 and min(fills) >= 26  # not 26 + 26 + 34
    assert balance_rows([7], 4) == [[0]]  # no empty rows


def test_the_layout_packs_short_texts_and_leaves_long_ones_alone():
    short = [13, 9, 14, 6, 11, 13, 8, 10] * 4
    rows = row_layout(short)
    assert len(rows) < len(short)  # packed: fewer, fuller rows
    assert layout_cost(short, rows) < layout_cost(short, [[i] for i in range(len(short))])
    same = [120] * 8  # nothing to gain: a text per row, as the library does
    assert sorted(map(len, row_layout(same))) == [1] * 8
    assert row_layout([]) == []


def test_a_packed_batch_shows_each_text_only_its_own_tokens():
    batch = pack([[101, 7, 102], [101, 8, 9, 102], [101, 102]], [[1, 2], [0]])
    assert batch.input_ids.tolist() == [[101, 8, 9, 102, 101, 102], [101, 7, 102, 0, 0, 0]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 0, 1], [0, 1, 2, 0, 0, 0]]
    assert batch.spans == [(1, 0, 3), (0, 0, 4), (0, 4, 2)]
    mask = batch.attention_mask[:, 0]
    assert mask[0, :4, :4].all() and not mask[0, :4, 4:].any() and mask[0, 4:, 4:].all()
    assert mask[1, :3, :3].all() and not mask[1, :3, 3:].any()
    assert mask[1, 3:, 3:].all()  # the padding sees itself: no row of the softmax is empty


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


def test_a_text_longer_than_the_model_reads_is_cut_as_the_library_cuts_it_among_short_ones(encoder):
    """One text past the model's 256 word pieces among short ones: cut where the library cuts it,
    and the short ones packed into its row (the padding they would need costs more than the
    longer attention)."""
    long_text = " ".join(["Russia's envoy met the Taliban delegation in Moscow."] * 60)
    texts = [long_text, *TEXTS]
    library = encoder.model.encode(texts, output_value=None)
    packed = encoder.packed_forward(texts)
    assert len(packed[0]["token_embeddings"]) == encoder.max_tokens == int(library[0]["attention_mask"].sum())
    lengths = [int(out["attention_mask"].sum()) for out in library]
    rows = row_layout(lengths)
    assert len(rows) == 1 and sorted(rows[0]) == list(range(len(texts)))
    for theirs, mine in zip(library, packed, strict=True):
        assert torch.allclose(mine["sentence_embedding"], theirs["sentence_embedding"], atol=1e-6)


def test_questions_and_a_rebuild_share_the_tokenizer_without_racing(encoder, monkeypatch):
    """The fast tokenizer sets padding and truncation before each call (transformers #47085): a
    question's offsets (no padding) tokenised while a rebuild pads its batch failed one of them
    ("Unable to create tensor ... activate padding"). The encoder's lock keeps them apart; the
    window is widened here so that without the lock the race shows on nearly every round."""
    import threading
    import time

    tokenizer = encoder.model.tokenizer
    set_up = tokenizer.set_truncation_and_padding

    def slow_set_up(*args, **kwargs):
        set_up(*args, **kwargs)
        time.sleep(0.01)  # between setting the padding and encoding: where another thread gets in

    monkeypatch.setattr(tokenizer, "set_truncation_and_padding", slow_set_up)
    passages = [("word " * n).strip() for n in range(1, 40, 6)]
    errors: list[str] = []

    def run(work, rounds):
        for _ in range(rounds):
            try:
                work()
            except Exception as exc:  # any failure of either side is the race
                errors.append(f"{type(exc).__name__}: {exc}"[:120])

    threads = [
        threading.Thread(target=run, args=(lambda: encoder.token_states(["Do Afghans still speak Russian?"]), 40)),
        threading.Thread(target=run, args=(lambda: encoder.encode(passages), 40)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
