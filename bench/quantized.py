"""A faster query encoder? The packaged model as torch fp32, torch int8 (dynamic quantisation of its
Linear layers) and ONNX Runtime (fp32 export, graph-fused O2 and O3, int8 dynamic quantised).

Every variant sits behind the same ``SentenceTransformer`` (only the transformer's forward pass is
swapped), so tokenisation, pooling and ``output_value=None`` (token vectors for MaxSim) are the real
ones. Measured in one run, alternating which variant goes first: bare encode of single questions
(pooled and with token vectors), batches of 20 and 40 questions (with token vectors), passage
throughput, agreement with torch fp32, load time, and retrieval quality on the evaluation set with
questions encoded by each variant (the index stays torch fp32, as a deployment would keep it while
switching the query encoder). The ONNX files are exported offline from the packaged weights into
var/bench/onnx/; without onnxruntime and onnx installed (``pip install -e '.[bench]'``) the ONNX
variants are skipped.

    python -m bench.quantized [--quick] [--repeats N]
"""

from __future__ import annotations

import copy
import importlib.util
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    EVAL_FILE,
    WORK,
    latency_summary,
    open_searcher,
    over_runs,
    parser,
    scalar_over_runs,
    write_result,
)
from .questions import questions as make_questions

ONNX_DIR = WORK / "onnx"
BATCHES = (20, 40)
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def quantized_copy(model):
    """The model with its Linear layers quantised to int8 on the fly (torch, no new packages)."""
    import torch

    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def export_onnx(model, folder: Path) -> tuple[dict[str, Path], dict[str, float]]:
    """ONNX files of the model's transformer, exported afresh from the loaded (packaged) weights,
    and the seconds each step took (a deployment would pay them once, not per start).

    Exported with eager attention: ONNX Runtime's BERT fusions recognise that graph (SDPA's does not
    fuse into its ``Attention`` op). ``O2``: fused offline (attention, embedding/skip layer norm, bias
    GELU); ``O3``: O2 plus the tanh GELU approximation; ``int8``: O2 with MatMul weights quantised
    per channel to int8 (dynamic activations, the u8s8 form AVX512-VNNI runs).
    """
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "onnx": folder / "model.onnx",
        "onnx-O2": folder / "model_O2.onnx",
        "onnx-O3": folder / "model_O3.onnx",
        "onnx-int8": folder / "model_O2_int8.onnx",
    }
    seconds: dict[str, float] = {}
    bert = copy.deepcopy(model[0].auto_model).eval()
    bert.config._attn_implementation = "eager"

    class Hidden(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = model.tokenizer(
        ["a first question", "and a somewhat longer second one"], padding=True, return_tensors="pt"
    )
    axes = {name: {0: "batch", 1: "tokens"} for name in (*ONNX_INPUTS, "last_hidden_state")}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(
            Hidden(bert),
            tuple(sample[n] for n in ONNX_INPUTS),
            str(paths["onnx"]),
            input_names=list(ONNX_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    seconds["onnx"] = time.perf_counter() - start
    config = bert.config
    for name, approximate in (("onnx-O2", False), ("onnx-O3", True)):
        start = time.perf_counter()
        options = FusionOptions("bert")
        options.enable_gelu_approximation = approximate
        fused = optimizer.optimize_model(
            str(paths["onnx"]),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            optimization_options=options,
        )
        fused.save_model_to_file(str(paths[name]))
        seconds[name] = time.perf_counter() - start
    start = time.perf_counter()
    quantize_dynamic(
        str(paths["onnx-O2"]),
        str(paths["onnx-int8"]),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    seconds["onnx-int8"] = time.perf_counter() - start
    return paths, seconds


def onnxruntime_import_seconds() -> float:
    """Extra start-up time of ``import onnxruntime`` in a fresh process that already imported
    sentence-transformers (which imports torch whatever the backend)."""
    code = (
        "import time, sentence_transformers; s = time.perf_counter(); import onnxruntime; "
        "print(time.perf_counter() - s)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def onnx_session(path: Path, threads: int):
    """An ONNX Runtime CPU session that does not spin its threads between calls.

    Spinning workers take the cores from torch, FAISS and the event loop running in the same process.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def with_onnx(model_path: str, session):
    """The packaged SentenceTransformer with its transformer's forward pass running in ``session``."""
    import torch
    from sentence_transformers import SentenceTransformer

    class OrtForward(torch.nn.Module):
        """Takes the BertModel's place: same inputs, ``last_hidden_state`` from ONNX Runtime."""

        def __init__(self, config) -> None:
            super().__init__()
            self.config = config

        def forward(self, input_ids, attention_mask, token_type_ids=None, **_: Any) -> dict[str, Any]:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            feed = {
                "input_ids": input_ids.numpy(),
                "attention_mask": attention_mask.numpy(),
                "token_type_ids": token_type_ids.numpy(),
            }
            return {"last_hidden_state": torch.from_numpy(session.run(None, feed)[0])}

    model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
    model[0].model = OrtForward(model[0].auto_model.config)  # the torch weights are dropped
    return model


def _alternating(names: list[str], i: int) -> list[str]:
    shift = i % len(names)
    return names[shift:] + names[:shift]


def _time_each(
    models: dict[str, Any], inputs: list[list[str]], call: Callable[[Any, list[str]], Any], offset: int
) -> dict[str, list[float]]:
    """Per input, every model once, rotating which goes first; seconds per model and input."""
    t: dict[str, list[float]] = {name: [] for name in models}
    for i, texts in enumerate(inputs):
        for name in _alternating(list(models), i + offset):
            start = time.perf_counter()
            call(models[name], texts)
            t[name].append(time.perf_counter() - start)
    return t


def _pooled(m, texts: list[str]):
    return m.encode(texts, normalize_embeddings=True, batch_size=64)


def _tokens(m, texts: list[str]):
    return m.encode(texts, output_value=None, batch_size=64)


def agreement(reference, other, texts: list[str]) -> dict[str, float]:
    """Cosine of pooled vectors and the largest token-vector difference against the reference."""
    a = reference.encode(texts, normalize_embeddings=True)
    b = other.encode(texts, normalize_embeddings=True)
    cos = np.sum(a * b, axis=1)
    worst = 0.0
    for fa, fb in zip(reference.encode(texts, output_value=None), other.encode(texts, output_value=None), strict=True):
        mask = fa["attention_mask"].bool()
        worst = max(worst, float((fa["token_embeddings"][mask] - fb["token_embeddings"][mask]).abs().max()))
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()), "token_max_abs_diff": worst}


def load_times(model_path: str, paths: dict[str, Path], threads: int, repeats: int) -> dict[str, Any]:
    """Seconds to load each variant in this (warm) process: torch builds the SentenceTransformer;
    an ONNX variant needs that too (tokeniser, pooling; sentence-transformers imports torch anyway)
    plus its session."""
    from sentence_transformers import SentenceTransformer

    out: dict[str, list[float]] = {"fp32": []}
    for _ in range(repeats):
        start = time.perf_counter()
        SentenceTransformer(model_path, device="cpu", local_files_only=True)
        out["fp32"].append(time.perf_counter() - start)
        for name, path in paths.items():
            start = time.perf_counter()
            onnx_session(path, threads)
            out.setdefault(f"{name} session", []).append(time.perf_counter() - start)
    return {name: scalar_over_runs(v) for name, v in out.items()}


def run(quick: bool, repeats: int) -> dict[str, Any]:
    import torch

    from embeddings.evaluation import evaluate, load_eval_set, searcher_pipeline

    searcher = open_searcher()
    fp32 = searcher.encoder.model
    models: dict[str, Any] = {"fp32": fp32, "int8": quantized_copy(fp32)}
    threads = torch.get_num_threads()
    model_path = _model_path(searcher)
    extra: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    if onnx_available():
        paths, extra["onnx_export_seconds"] = export_onnx(fp32, ONNX_DIR)
        extra["onnxruntime_import_seconds"] = onnxruntime_import_seconds()
        for name, path in paths.items():
            models[name] = with_onnx(model_path, onnx_session(path, threads))
        import onnxruntime

        extra["onnxruntime"] = onnxruntime.__version__
    else:
        extra["onnx_skipped"] = "onnxruntime/onnx not installed: pip install -e '.[bench]'"

    questions = make_questions(40 if quick else 200)
    passages = [searcher.data.passage_text(i) for i in range(min(len(searcher.passages), 64 if quick else 256))]
    for m in models.values():
        m.encode(questions[:4])
        m.encode(questions[:40], output_value=None)
    single: dict[str, list] = {name: [] for name in models}
    single_tokens: dict[str, list] = {name: [] for name in models}
    batch_ms: dict[str, dict[str, list[float]]] = {name: {} for name in models}
    throughput: dict[str, list[float]] = {name: [] for name in models}
    for r in range(repeats):
        one = [[q] for q in questions]
        for name, seconds in _time_each(models, one, _pooled, r).items():
            single[name].append(latency_summary(seconds))
        for name, seconds in _time_each(models, one, _tokens, r + 1).items():
            single_tokens[name].append(latency_summary(seconds))
        for size in BATCHES:
            groups = [questions[i : i + size] for i in range(0, len(questions) - size + 1, size)]
            # with token vectors: the searcher always asks for them, so that is what a batch costs
            for name, seconds in _time_each(models, groups, _tokens, r).items():
                batch_ms[name].setdefault(f"{size} tokens", []).append(statistics.median(seconds) * 1000)
        for name in _alternating(list(models), r):
            start = time.perf_counter()
            models[name].encode(passages, batch_size=64)
            throughput[name].append(len(passages) / (time.perf_counter() - start))

    agree = {name: agreement(fp32, m, questions) for name, m in models.items() if name != "fp32"}
    loads = load_times(model_path, paths, threads, repeats)

    eval_set = load_eval_set(EVAL_FILE)
    quality = {}
    try:
        for name, m in models.items():
            searcher.encoder.model = m
            searcher.forget_questions()
            metrics = evaluate(eval_set, searcher_pipeline(searcher))
            metrics.pop("misses", None)
            quality[name] = metrics
    finally:
        searcher.encoder.model = fp32
        searcher.forget_questions()
    return {
        "questions": len(questions),
        "repeats": repeats,
        "threads": threads,
        **extra,
        "encode_latency_ms": {name: over_runs(v) for name, v in single.items()},
        "encode_tokens_latency_ms": {name: over_runs(v) for name, v in single_tokens.items()},
        "batch_ms": {name: {k: scalar_over_runs(v) for k, v in b.items()} for name, b in batch_ms.items()},
        "passages_per_second": {name: scalar_over_runs(v) for name, v in throughput.items()},
        "agreement_vs_fp32": agree,
        "load_seconds": loads,
        "quality_full_pipeline": quality,
    }


def _model_path(searcher) -> str:
    from embeddings.model import resolve_model

    return resolve_model(searcher.encoder.spec)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    write_result("quantized", run(args.quick, args.repeats or (1 if args.quick else 3)), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
