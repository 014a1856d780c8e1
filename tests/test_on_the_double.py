"""The model on CuPy's path: training steps (every cell and decoder, bidirectional, the
ranks' shards), greedy and beam decoding, gradient flow, evaluation, gradient checks and a
checkpoint that goes from the GPU to NumPy, each against NumPy in float64 with the
dropout masks shared.

Each test runs on the CuPy double (tests/cupy_double.py), where the results must be
NumPy's exactly and the host may wait for the device only where the test allows; and,
marked ``gpu``, on a real GPU through CuPy in float64 and float32, to tolerances (a GPU
sums in other orders: cuBLAS, atomic adds), skipped where there is none. The fixes that
came from reading the CuPy path for what a GPU would refuse each have a test at the end.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from minis2s import checkpoint
from minis2s.backend import Backend, BackendError, get_backend, to_numpy
from minis2s.data import iterate_batches, load_data, make_batch
from minis2s.decode import beam_search, greedy_decode
from minis2s.model import init_params, seq2seq_backward, seq2seq_forward
from minis2s.presets import get_preset
from minis2s.train import Trainer, model_config
from minis2s.train.resume import checkpoint_of, resume_trainer

from . import cupy_double
from .test_shards import Hub, SimulatedRanks, run_ranks

ROOT = Path(__file__).resolve().parents[1]

# a NumPy function or cupyx.scatter_add on the device path would warn: fail instead
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")


# ------------------------------------------------------------ where the tests run


class Dev:
    """Where a test runs: the double (``exact``: NumPy's results bit for bit, the host's
    waits counted), or a real GPU (results to ``tol`` relative to the largest element)."""

    def __init__(self, kind: str, dtype: str):
        self.kind, self.dtype = kind, dtype
        self.backend: Backend = get_backend("cupy", dtype)
        self.numpy: Backend = get_backend("numpy", dtype)
        self.xp = self.backend.xp
        self.exact = kind == "double"
        self.tol = 0.0 if self.exact else {"float64": 1e-9, "float32": 2e-3}[dtype]

    def close(self, got, want, what: str = "", tol: float | None = None) -> None:
        """``got`` (either backend, or a number) is ``want`` (NumPy's)."""
        got = np.asarray(to_numpy(got), dtype=np.float64)
        want = np.asarray(to_numpy(want), dtype=np.float64)
        assert got.shape == want.shape, (what, got.shape, want.shape)
        if self.exact:
            assert np.array_equal(got, want, equal_nan=True), what
            return
        tol = self.tol if tol is None else tol
        scale = max(float(np.abs(want).max(initial=0.0)), 1e-30)
        assert float(np.abs(got - want).max(initial=0.0)) <= tol * scale, what

    def reset_syncs(self) -> None:
        cupy_double.syncs.reset()

    def waits(self) -> list[str] | None:
        """What made the host wait since :meth:`reset_syncs` (None on a real GPU, where
        nothing counts them)."""
        return cupy_double.syncs.kinds() if self.exact else None

    def share_masks(self, trainer: Trainer, seed: int = 3) -> None:
        """On a real GPU, a dropout generator that draws NumPy's stream for the trainer's
        seed (CuPy's own draws another); the double's draws it already."""
        if not self.exact:
            trainer.dropout_gen = HostStream(seed + 2, self.xp)


class HostStream:
    """A generator with CuPy's ``random(shape, dtype)`` that draws NumPy's stream on the
    host and hands the draws to the device."""

    def __init__(self, seed: int, xp):
        self.gen, self.xp = np.random.default_rng(seed), xp

    def random(self, shape, dtype=np.float64):
        return self.xp.asarray(self.gen.random(shape, dtype=dtype))


def _real_cupy_or_skip() -> None:
    """Skip without a GPU that CuPy can use; with ``MINIS2S_REQUIRE_GPU=1``
    (benchmarks/gpu_check.sh sets it) fail instead."""
    import importlib.util

    reason = None
    if importlib.util.find_spec("cupy") is None:
        reason = "CuPy is not installed here (the GPU tests run where it is)"
    else:
        try:
            get_backend("cupy")
        except BackendError as exc:
            reason = f"no usable GPU: {exc}"
    if reason is None:
        return
    if os.environ.get("MINIS2S_REQUIRE_GPU"):
        pytest.fail(f"MINIS2S_REQUIRE_GPU is set, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(params=[
    pytest.param(("double", "float64"), id="double-float64"),
    pytest.param(("cupy", "float64"), id="cupy-float64", marks=pytest.mark.gpu),
    pytest.param(("cupy", "float32"), id="cupy-float32", marks=pytest.mark.gpu)])
def dev(request, monkeypatch) -> Dev:
    kind, dtype = request.param
    if kind == "double":
        cupy_double.install(monkeypatch)
    else:
        _real_cupy_or_skip()
    return Dev(kind, dtype)


# ------------------------------------------------------------ data and models


def _preset(**changes):
    """The seed's ``zh`` on 399 pairs, 50 of them held out, dropout 0.3."""
    return get_preset("zh").with_overrides(num_examples=399, valid_size=50, dropout=0.3,
                                           **changes)


@functools.cache
def _data(corpus):
    return load_data(corpus, _preset().data_spec(), warn=lambda m: None)


def _setup(corpus, model="seq2seq", cell="gru", bidirectional=False):
    return _preset(model=model, cell=cell, bidirectional=bidirectional), _data(corpus)


def _batches(data, n: int, size: int = 64, seed: int = 0):
    bos = data.tgt_vocab.bos
    batches = iterate_batches(data.train, size, np.random.default_rng(seed), bos=bos)
    return [b for _, b in zip(range(n), batches)]


STEP_CASES = [("seq2seq", "gru", False), ("seq2seq", "lstm", False),
              ("seq2seq", "rnn", False), ("attention", "gru", False),
              ("attention", "lstm", False), ("attention", "rnn", False),
              ("seq2seq", "gru", True), ("attention", "lstm", True)]


def _case_id(case) -> str:
    model, cell, bi = case
    return f"{model}-{cell}" + ("-bidirectional" if bi else "")


def _assert_same_trainers(dev: Dev, on: Trainer, ref: Trainer, what: str) -> None:
    dev.close(on.grads.flat, ref.grads.flat, f"{what}: gradients")
    dev.close(on.opt.m.flat, ref.opt.m.flat, f"{what}: Adam's m")
    dev.close(on.opt.v.flat, ref.opt.v.flat, f"{what}: Adam's v", tol=2 * dev.tol)
    if dev.dtype == "float64":  # Adam's first steps move each parameter by about lr
        #                         whatever its gradient's size: compared as updates
        dev.close(on.params.flat, ref.params.flat, f"{what}: parameters",
                  tol=0.0 if dev.exact else 1e-6)


# ------------------------------------------------------------ training


@pytest.mark.parametrize("case", STEP_CASES, ids=_case_id)
def test_a_training_step_is_numpys_and_waits_for_the_device_twice(dev, corpus, case):
    """Two steps of one trainer per cell and decoder (bidirectional too), dropout 0.3:
    the loss, the gradients, Adam's moments and the parameters are NumPy's; on the
    double each step makes the host wait exactly twice, for the loss and then for the
    gradient norm (what clipping needs), and copies nothing else back."""
    preset, data = _setup(corpus, *case)
    cfg = model_config(preset, data)
    ref = Trainer(cfg, preset, dev.numpy, seed=3)
    on = Trainer(cfg, preset, dev.backend, seed=3)
    dev.share_masks(on)
    for i, batch in enumerate(_batches(data, 2)):
        want = ref.step(batch)
        dev.reset_syncs()
        got = on.step(batch)
        if dev.exact:
            assert dev.waits() == ["float", "float"], i  # the loss, the gradient norm
            assert got == want
        else:
            assert got == pytest.approx(want, rel=dev.tol)
        _assert_same_trainers(dev, on, ref, f"step {i}")


@pytest.mark.parametrize("model", ["seq2seq", "attention"])
def test_the_ranks_shards_are_numpys_and_each_step_waits_three_times(dev, corpus, model):
    """Two simulated ranks on the device, each on its shard of three batches (its rows
    of the masks drawn for the whole batch), against two on NumPy: losses, summed
    gradients and parameters are NumPy's. On the double each rank's step waits three
    times: its loss, its gradients copied to the host for the sum over the ranks, and
    the gradient norm."""
    preset, data = _setup(corpus, model)
    cfg = model_config(preset, data)
    batches = _batches(data, 3)

    def steps(backend, hub):
        trainers = [Trainer(cfg, preset, backend, seed=3, ranks=SimulatedRanks(hub, r))
                    for r in range(hub.size)]
        if backend is dev.backend:
            for t in trainers:
                dev.share_masks(t)
        losses = run_ranks(hub, lambda r: [trainers[r].step(b) for b in batches])
        return trainers, losses

    ref, want = steps(dev.numpy, Hub(2))
    dev.reset_syncs()
    on, got = steps(dev.backend, Hub(2))
    if dev.exact:
        per_thread = cupy_double.syncs.threads()
        assert sorted(map(len, per_thread.values())) == [9, 9], per_thread
        for kinds in per_thread.values():
            assert kinds == ["float", "get", "float"] * 3
    for r in range(2):
        dev.close(got[r], want[r], f"rank {r}: losses")
        _assert_same_trainers(dev, on[r], ref[r], f"rank {r}")


# ------------------------------------------------------------ decoding


def _fresh(dev: Dev, corpus, model: str, seed: int = 0):
    preset, data = _setup(corpus, model)
    cfg = model_config(preset, data)
    ref = init_params(cfg, dev.numpy, np.random.default_rng(seed))
    on = init_params(cfg, dev.backend, np.random.default_rng(seed))
    return preset, data, cfg, ref, on


@pytest.mark.parametrize("model", ["seq2seq", "attention"])
@pytest.mark.parametrize("beam", [1, 3], ids=["greedy", "beam3"])
def test_decoding_gives_numpys_translations_copying_back_only_the_best(dev, corpus, model,
                                                                       beam):
    """Greedy decoding and beam search of 24 sentences (attention weights asked for):
    the same tokens, weights and scores as NumPy's. What comes back to the host at each
    step is the chosen tokens (greedy) or each row's K best candidates (beam), and the
    attention weights: never a row of the vocabulary's logits."""
    preset, data, cfg, ref, on = _fresh(dev, corpus, model)
    src, valid = data.train.src[:24], data.train.src_valid_len[:24]
    steps, V = preset.num_steps, cfg.tgt_vocab_size

    def decode(params, backend):
        if beam == 1:
            return greedy_decode(params, cfg, src, data.tgt_vocab, steps, backend, valid,
                                 return_weights=True)
        return beam_search(params, cfg, src, data.tgt_vocab, steps, backend, beam, 0.75,
                           valid, return_weights=True)

    want = decode(ref, dev.numpy)
    dev.reset_syncs()
    got = decode(on, dev.backend)
    if dev.exact:
        copied = cupy_double.syncs.copied()
        assert copied and all(V not in shape for shape in copied), copied
        per_step = 2 if beam > 1 else 1  # tokens (and their log-probabilities)
        per_step += cfg.decoder.attends  # and the attention weights
        assert len(copied) <= steps * per_step
    assert [h.tokens for h in got] == [h.tokens for h in want]
    for g, w in zip(got, want):
        if cfg.decoder.attends:
            dev.close(g.weights, w.weights, "attention weights")
        else:
            assert g.weights is None and w.weights is None
        if beam > 1:
            dev.close(g.log_prob, w.log_prob, "log P")
            dev.close(g.score, w.score, "score")


# ------------------------------------------------------------ gradient flow


@pytest.mark.parametrize("model,cell", [("seq2seq", "gru"), ("attention", "lstm")])
def test_gradient_flow_is_numpys(dev, corpus, model, cell):
    """``gradflow``'s two measures, the total ∂L/∂h_t per step and the gradient by
    distance (the LSTM's cell state too), on 16 pairs."""
    from minis2s.gradflow import gradient_by_distance, gradient_flow

    preset, data = _setup(corpus, model, cell)
    cfg = model_config(preset.with_overrides(dropout=0.0), data)
    p = data.train
    batch = make_batch(p.src[:16], p.src_valid_len[:16], p.tgt[:16], p.tgt_valid_len[:16],
                       data.tgt_vocab.bos)
    dtype = "float64"  # gradflow measures in float64 on every backend
    ref = init_params(cfg, get_backend("numpy", dtype), np.random.default_rng(1))
    on = init_params(cfg, get_backend("cupy", dtype), np.random.default_rng(1))
    for measure in (gradient_flow, gradient_by_distance):
        want = measure(ref, cfg, batch).to_dict()
        got = measure(on, cfg, batch.to(dev.xp)).to_dict()
        _same_tree(dev, got, want, measure.__name__)


def _same_tree(dev: Dev, got, want, what: str) -> None:
    if isinstance(want, dict):
        assert got.keys() == want.keys(), what
        for k in want:
            _same_tree(dev, got[k], want[k], f"{what}.{k}")
    elif isinstance(want, list) and want and isinstance(want[0], (list, float)):
        assert len(got) == len(want), what
        for i, (g, w) in enumerate(zip(got, want)):
            _same_tree(dev, g, w, f"{what}[{i}]")
    elif isinstance(want, float):
        dev.close(got, want, what, tol=None if dev.exact else 1e-9)
    else:
        assert got == want, what


# ------------------------------------------------------------ evaluation and checkpoints


def _trained(corpus, model="seq2seq", steps=3):
    """A checkpoint of a NumPy run of a few steps, and its data."""
    preset, data = _setup(corpus, model)
    trainer = Trainer(model_config(preset, data), preset, get_backend("numpy"), seed=3)
    for batch in _batches(data, steps):
        trainer.step(batch)
    return checkpoint_of(trainer, data, 3), data


@pytest.mark.parametrize("model,beam", [("seq2seq", 1), ("attention", 2)])
def test_evaluate_is_numpys(dev, corpus, model, beam):
    """``evaluate`` of a checkpoint on its validation part: the same translations, and
    so the same BLEU and chrF."""
    from minis2s.evaluate import evaluate_model

    ck, _ = _trained(corpus, model)
    want = evaluate_model(ck, dev.numpy, corpus, part="valid", beam=beam)
    got = evaluate_model(ck, dev.backend, corpus, part="valid", beam=beam)
    assert got.hyps == want.hyps and got.refs == want.refs
    assert got.report == want.report


def test_a_checkpoint_trained_on_the_gpu_resumes_on_numpy(dev, corpus, tmp_path):
    """Three steps on the device, saved, loaded and resumed on NumPy, against the same on
    NumPy throughout: the saved parameters and Adam's moments are NumPy's, the training
    record the same but for the backend and the dropout stream (CuPy's has no state to
    save, which resuming says), and the resumed trainers take the same next step."""
    preset, data = _setup(corpus, "attention")
    cfg = model_config(preset, data)
    runs = {}
    for name, backend in (("numpy", dev.numpy), ("device", dev.backend)):
        trainer = Trainer(cfg, preset, backend, seed=3)
        if name == "device":
            dev.share_masks(trainer)
        for batch in _batches(data, 3):
            trainer.step(batch)
        path = checkpoint.save(tmp_path / name / "checkpoint.npz",
                               checkpoint_of(trainer, data, 3))
        runs[name] = checkpoint.load(path)
    want, got = runs["numpy"], runs["device"]
    for name in want.params:
        if dev.dtype == "float64":  # in float32 Adam's steps on tiny gradients differ
            dev.close(got.params[name], want.params[name], name,
                      tol=None if dev.exact else 1e-6)
        else:
            assert np.abs(got.params[name] - want.params[name]).max() <= 10 * preset.lr
    for name in want.extra:
        dev.close(got.extra[name], want.extra[name], name, tol=None if dev.exact else
                  2 * dev.tol)
    record_got, record_want = dict(got.training), dict(want.training)
    state_got, state_want = dict(record_got.pop("state")), dict(record_want.pop("state"))
    assert record_got == record_want
    assert state_got.pop("backend") == "cupy" and state_want.pop("backend") == "numpy"
    assert state_got.pop("dropout_rng") is None and state_want.pop("dropout_rng")
    assert state_got == state_want

    said = []
    host = get_backend("numpy", dev.dtype)
    resumed = {name: resume_trainer(ck, preset, data, host, None, warn=said.append)
               for name, ck in runs.items()}
    assert said == ["resuming a cupy run on numpy: the dropout masks will differ from an "
                    "uninterrupted run's (resume is exact on numpy only)"]
    batch = _batches(data, 4)[3]
    for t in resumed.values():
        t.dropout_gen = np.random.default_rng(11)  # the same masks for both from here
    losses = {name: t.step(batch) for name, t in resumed.items()}
    dev.close(losses["device"], losses["numpy"], "loss after resuming",
              tol=None if dev.exact else max(dev.tol, 1e-6))
    if dev.exact:
        assert np.array_equal(resumed["device"].params.flat, resumed["numpy"].params.flat)


# ------------------------------------------------------------ gradient checks


def _gradient_check_rows(on=None):
    """Finite-difference checks of every op, a stack of each cell and two small whole
    models (bidirectional LSTM, attention with a GRU), on backend ``on`` (None: NumPy)."""
    from minis2s import gradcheck as gc
    from minis2s.model import ModelConfig

    rng = np.random.default_rng(4)
    rows = gc.check_embedding(rng, on=on) + gc.check_embed_project(rng, (4, 3), V=5, on=on)
    rows += gc.check_embed_project(rng, (2, 2), V=6, on=on) + gc.check_dense(rng, on=on)
    rows += gc.check_dropout(rng, on=on) + gc.check_repeat_steps(rng, on=on)
    rows += gc.check_softmax_ce(rng, on=on) + gc.check_additive_attention(rng, on=on)
    for cell in ("gru", "lstm", "rnn"):
        rows += gc.check_stack(rng, T=3, N=2, D=2, H=2, cell=cell, on=on)
    for model, cell, bidirectional in (("seq2seq", "lstm", True),
                                       ("attention", "gru", False)):
        cfg = ModelConfig(src_vocab_size=4, tgt_vocab_size=4, embed_size=2, num_hiddens=2,
                          num_layers=1, dropout=0.2, cell=cell, bidirectional=bidirectional,
                          model=model)
        rows += gc.check_seq2seq(rng, cfg, N=3, T_src=3, T_tgt=3,
                                 scale_floor=gc.cases.SCALE_FLOOR, on=on)
    return rows


_numpy_gradient_check_rows = functools.cache(_gradient_check_rows)


def test_gradient_checks_on_the_device_are_numpys(dev):
    """``gradcheck --backend cupy``'s cases on the device give the finite-difference
    errors NumPy's run gives (on a GPU, where the errors themselves are rounding, below
    the tolerance is what counts)."""
    from minis2s.gradcheck import TOLERANCE

    if dev.dtype != "float64":
        pytest.skip("finite differences need float64")
    want, got = _numpy_gradient_check_rows(), _gradient_check_rows(dev.backend)
    assert [(r.case, r.name, r.shape) for r in got] == [(r.case, r.name, r.shape)
                                                        for r in want]
    if dev.exact:
        assert [r.error for r in got] == [r.error for r in want]
    assert max(r.error for r in got) <= TOLERANCE


def test_the_gradcheck_command_checks_on_the_backend_it_is_given(cupy_double, monkeypatch,
                                                                  capsys):
    """``minis2s gradcheck --backend cupy`` runs the suite on CuPy in float64, says so
    above the rows, and prints each case's rows as the case ends (a run stopped by a time
    limit still shows what it checked)."""
    from minis2s.cli import main
    from minis2s.gradcheck import cases

    seen = []
    row = cases.Row("dense", "weight", (5, 4), 1e-9)

    def run_all(seed, on=None, each=None):
        seen.append((seed, on))
        each([row])  # each case's rows are printed as the case ends
        return [row]

    monkeypatch.setattr(cases, "run_all", run_all)
    assert main(["gradcheck", "--backend", "cupy", "--seed", "3"]) == 0
    (seed, on), = seen
    assert seed == 3 and on.name == "cupy" and on.dtype == np.float64
    assert capsys.readouterr().out.splitlines() == [
        "on cupy (gpu), float64", "dense  weight         5x4  1.00e-09",
        "max relative error 1.00e-09 over 1 parameters"]


# ------------------------------------------------------------ the fixes, each shown here


def test_the_embeddings_gradient_is_added_with_add_at_without_a_warning(cupy_double):
    """The embedding's backward adds the rows of repeated ids through ``cupy.add.at``
    (``cupyx.scatter_add`` warns that it is deprecated, on every call)."""
    from minis2s.ops import (
        embed_project_backward,
        embed_project_forward,
        embedding_backward,
        embedding_forward,
    )

    cp = cupy_double
    rng = np.random.default_rng(0)
    ids = np.array([[1, 1, 2], [0, 1, 2]])
    weight = rng.standard_normal((5, 4))
    dout = rng.standard_normal((2, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, cache = embedding_forward(cp.asarray(ids), cp.asarray(weight))
        got = embedding_backward(cp.asarray(dout), cache)["weight"]
        w_ih, b_ih = rng.standard_normal((6, 4)), rng.standard_normal(6)
        _, pcache = embed_project_forward(cp.asarray(ids), cp.asarray(weight[:3]),
                                          cp.asarray(w_ih), cp.asarray(b_ih))  # table way
        table = embed_project_backward(cp.asarray(rng.standard_normal((2, 3, 6))), pcache)
    want = np.zeros((5, 4))
    np.add.at(want, ids.reshape(-1), dout.reshape(-1, 4))
    np.testing.assert_allclose(got.get(), want, rtol=1e-12, atol=1e-12)
    assert table["embedding"].shape == (3, 4)


@pytest.mark.parametrize("fault,message", [
    ("getDeviceCount", "cannot compute on the GPU: RuntimeError: no CUDA-capable device"),
    ("exp", "cannot compute on the GPU: RuntimeError: no kernel image is available"),
    ("matmul", "cannot compute on the GPU: RuntimeError: CUBLAS_STATUS_NOT_INITIALIZED")])
def test_a_gpu_that_cannot_compute_is_a_backend_error_with_the_reason(cupy_double, fault,
                                                                       message):
    reason = {"getDeviceCount": "no CUDA-capable device is detected",
              "exp": "no kernel image is available for execution on the device",
              "matmul": "CUBLAS_STATUS_NOT_INITIALIZED"}[fault]
    cupy_double._double_state.faults[fault] = RuntimeError(reason)
    with pytest.raises(BackendError, match=message):
        get_backend("cupy")


def test_the_backend_checks_the_gpus_numbers(cupy_double):
    """A product and an exp, copied back: wrong numbers are refused, and making the
    backend waits for the device once (that copy)."""
    cupy_double.syncs.reset()
    get_backend("cupy", "float64")
    assert cupy_double.syncs.kinds() == ["asnumpy"]
    cupy_double._double_state.wrong_exp = True
    with pytest.raises(BackendError, match="computes wrong numbers on the GPU"):
        get_backend("cupy")


def test_no_gpu_at_all_is_a_backend_error(cupy_double):
    cupy_double._double_state.count = 0
    with pytest.raises(BackendError, match="found no CUDA device"):
        get_backend("cupy")


def test_a_cupy_that_does_not_import_is_a_backend_error_with_the_reason(monkeypatch):
    class Broken:
        def find_spec(self, name, path=None, target=None):
            if name == "cupy":
                raise RuntimeError("CUDA driver version is insufficient for CUDA runtime")

    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    with pytest.raises(BackendError, match="CuPy is installed but does not import: "
                                           "RuntimeError: CUDA driver version"):
        get_backend("cupy")
    monkeypatch.setitem(sys.modules, "cupy", None)  # not installed
    with pytest.raises(BackendError, match=r"not installed.*minis2s\[gpu\]' \(CUDA 13\) or "
                                           r"'minis2s\[gpu-cuda12\]' \(CUDA 12\)"):
        get_backend("cupy")


@pytest.mark.parametrize("env,device", [
    ({"PMI_SIZE": "8", "PMI_RANK": "5", "MPI_LOCALRANKID": "5"}, 1),  # MPICH: local 5 % 4
    ({"OMPI_COMM_WORLD_SIZE": "6", "OMPI_COMM_WORLD_RANK": "4",
      "OMPI_COMM_WORLD_LOCAL_RANK": "2"}, 2),  # Open MPI, on the second machine
    ({"PMI_SIZE": "8", "PMI_RANK": "7"}, 3),  # no local rank said: the rank's
    ({"MPI_LOCALRANKID": "3"}, 0),  # no launcher of several ranks: CuPy's current
], ids=["mpich", "openmpi", "rank-only", "one-process"])
def test_each_rank_takes_the_gpu_of_its_local_rank(monkeypatch, env, device):
    """Under ``mpiexec`` a rank's GPU is its rank on its machine mod the GPUs there; a
    plain process keeps CuPy's current device."""
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                "PMIX_SIZE", "PMIX_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
                "PMI_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    cupy_double.install(monkeypatch, devices=4)
    get_backend("cupy")
    assert cupy_double.state.current == device


def test_the_loss_of_a_batch_without_a_target_token_is_zero_with_no_reduction_over_nothing(
        cupy_double, corpus):
    """A batch whose every target is empty: the packed loss has no row, so the loss is 0
    and every gradient 0, as on NumPy, without a max over a zero-size array (which CuPy
    refuses); the attention decoder's steps have no row either."""
    from minis2s.ops import softmax_ce_backward, softmax_ce_forward
    from minis2s.ops.additive_attention import masked_softmax

    cp = cupy_double
    loss, cache = softmax_ce_forward(cp.zeros((0, 7)), cp.zeros(0, dtype=np.int64),
                                     cp.zeros(0))
    assert float(loss) == 0.0 and softmax_ce_backward(1.0, cache).shape == (0, 7)
    assert masked_softmax(cp.zeros((0, 5)), cp.zeros((0, 5), dtype=bool)).shape == (0, 5)
    preset, data = _setup(corpus, "attention")
    cfg = model_config(preset, data)
    p = data.train
    batch = make_batch(p.src[:4], p.src_valid_len[:4], p.tgt[:4], np.zeros(4, np.int64),
                       data.tgt_vocab.bos)
    for backend in (get_backend("numpy", "float64"), get_backend("cupy", "float64")):
        params = init_params(cfg, backend, np.random.default_rng(0))
        loss, fcache = seq2seq_forward(params, cfg, batch.to(backend.xp))
        grads = seq2seq_backward(1.0, fcache).params
        assert float(loss) == 0.0
        assert all(not to_numpy(g).any() for g in grads.values())


@pytest.mark.parametrize("where", ["batch on the host", "batch on the device",
                                   "masks on the host"])
def test_the_model_refuses_a_batch_on_another_backend(cupy_double, corpus, where):
    from minis2s.model import draw_dropout_masks

    preset, data = _setup(corpus)
    cfg = model_config(preset, data)
    (batch,) = _batches(data, 1, size=8)
    numpy, cupy = get_backend("numpy", "float64"), get_backend("cupy", "float64")
    params = init_params(cfg, numpy if where == "batch on the device" else cupy,
                         np.random.default_rng(0))
    masks = None
    if where == "batch on the host":
        message = "the batch's src is a numpy array but the model's parameters are cupy"
    elif where == "batch on the device":
        batch, message = batch.to(cupy.xp), "the batch's src is a cupy array but the model"
    else:
        batch = batch.to(cupy.xp)
        masks = draw_dropout_masks(cfg, numpy, numpy.generator(0), 8, batch.src.shape[1],
                                   batch.tgt.shape[1])
        message = "a dropout mask is a numpy array but the model's parameters are cupy"
    with pytest.raises(BackendError, match=message):
        seq2seq_forward(params, cfg, batch, masks)


def test_a_checkpoint_of_device_arrays_is_saved_through_to_numpy(cupy_double, corpus,
                                                                 tmp_path):
    """A checkpoint whose arrays are still on the device is written (copied to the host
    once, never by NumPy's implicit conversion, which CuPy refuses) and reads back
    equal."""
    ck, _ = _trained(corpus, steps=1)
    on_device = replace(ck, params={k: cupy_double.asarray(v) for k, v in ck.params.items()},
                        extra={k: cupy_double.asarray(v) for k, v in ck.extra.items()})
    path = checkpoint.save(tmp_path / "checkpoint.npz", on_device)
    back = checkpoint.load(path)
    for name, value in ck.params.items():
        assert np.array_equal(back.params[name], value)
    for name, value in ck.extra.items():
        assert np.array_equal(back.extra[name], value)


def test_no_test_sees_minis2s_backend_unless_it_asks(tmp_path):
    """With ``MINIS2S_BACKEND=cupy`` in the shell, a test (and a command it starts) still
    runs on NumPy, and only a test marked ``backend_from_environment`` sees the
    variable."""
    env = {**os.environ, "MINIS2S_BACKEND": "cupy", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"{Path(__file__).name}::test_the_backend_variable_is_unset_here",
                        f"{Path(__file__).name}::test_a_marked_test_sees_the_backend_variable"],
                       cwd=Path(__file__).parent, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout


def test_the_backend_variable_is_unset_here():
    assert "MINIS2S_BACKEND" not in os.environ
    assert get_backend().name == "numpy"
    out = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get("
                          "'MINIS2S_BACKEND', 'unset'))"], capture_output=True, text=True)
    assert out.stdout.strip() == "unset"


@pytest.mark.backend_from_environment
def test_a_marked_test_sees_the_backend_variable():
    if os.environ.get("MINIS2S_BACKEND") is None:
        pytest.skip("run with MINIS2S_BACKEND set (test_no_test_sees_... does)")
    assert os.environ["MINIS2S_BACKEND"] == "cupy"


# ------------------------------------------------------------ the benchmark on the GPU


def test_the_benchmark_trains_minis2s_on_the_backend_it_is_given(cupy_double, tiny_corpus):
    """``bench --backend cupy``'s minis2s run: the trainer is on CuPy and the result says
    it ran on the GPU; the matrix-product ceiling is measured there, each product waited
    for."""
    from minis2s.bench.report import gemm_ceiling_gflops
    from minis2s.bench.runs import bench_data, run_minis2s

    preset = get_preset("zh")
    result = run_minis2s(preset, bench_data(preset, tiny_corpus), 1, 0, "cupy")
    assert result.device == "gpu" and result.tokens_per_sec > 0 and np.isfinite(result.loss)
    cupy_double.syncs.reset()
    assert gemm_ceiling_gflops(n=32, repeats=3, backend="cupy") > 0
    # the backend's check of the GPU, then the first product and each timed one
    assert cupy_double.syncs.kinds() == ["asnumpy"] + ["synchronize"] * 4


def test_the_benchmark_gives_each_run_the_backend(monkeypatch):
    """Every run the benchmark starts is told the backend (its worker takes it, and
    PyTorch goes to the GPU with cupy)."""
    import json

    from minis2s import bench
    from minis2s.bench import launch

    seen = []

    def run(cmd, **kwargs):
        seen.append(cmd)
        result = bench.Result("minis2s", 1.0, 1.0, 1.0, 1.0, 1)
        return subprocess.CompletedProcess(cmd, 0, json.dumps(result.__dict__) + "\n", "")

    monkeypatch.setattr(launch.subprocess, "run", run)
    launch.measure_pair("zh", 1, backend="cupy")
    assert [cmd[cmd.index("--backend") + 1] for cmd in seen] == ["cupy", "cupy"]
    assert [cmd[cmd.index("--worker") + 1] for cmd in seen] == ["minis2s", "pytorch"]
    args = bench.build_parser().parse_args(["--worker", "pytorch", "--backend", "cupy"])
    assert args.backend == "cupy"


def test_the_benchmark_on_a_backend_it_cannot_use_is_one_line(capsys, monkeypatch):
    from minis2s import bench

    monkeypatch.setitem(sys.modules, "cupy", None)  # no CuPy here
    assert bench.main(["--backend", "cupy", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("minis2s bench: error: the 'cupy' backend "
                                               "needs CuPy, which is not installed")
