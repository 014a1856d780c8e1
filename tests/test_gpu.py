"""minis2s on a GPU against PyTorch on the same GPU, in float64, and the benchmark's GPU
runs. Every test here needs a working CuPy and a PyTorch built with CUDA: without them
the module skips (``MINIS2S_REQUIRE_GPU=1`` turns the skip into a failure, as
benchmarks/gpu_check.sh sets it). The model against NumPy on the GPU is
tests/test_on_the_double.py's ``gpu`` tests."""

import os

import numpy as np
import pytest

from minis2s.backend import BackendError, get_backend, map_arrays, to_numpy

pytestmark = pytest.mark.gpu


def _skip(reason: str):
    if os.environ.get("MINIS2S_REQUIRE_GPU"):
        pytest.fail(f"MINIS2S_REQUIRE_GPU is set, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    GPU = get_backend("cupy", "float64")
except BackendError as exc:
    _skip(f"no GPU through CuPy here: {exc}")
try:
    import torch
except ImportError:
    _skip("PyTorch is not installed")
if not torch.cuda.is_available():
    _skip("PyTorch here has no CUDA")

from minis2s import gradcheck as gc  # noqa: E402
from minis2s.model import (  # noqa: E402
    DECODERS,
    ModelConfig,
    draw_dropout_masks,
    init_params,
    seq2seq_backward,
    seq2seq_forward,
)
from minis2s.ops import CELLS  # noqa: E402
from minis2s.torch_reference import TorchSeq2Seq, masked_ce  # noqa: E402

CUDA = torch.device("cuda")
F64 = get_backend("numpy", "float64")


def _to_torch(tree):
    """Masks (NumPy arrays in lists and named tuples) as float64 CUDA tensors."""
    return map_arrays(lambda a: torch.as_tensor(np.asarray(a), device=CUDA), tree)


@pytest.mark.parametrize("model", list(DECODERS))
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
def test_minis2s_on_the_gpu_is_pytorch_on_cuda_in_float64(model, cell, packed):
    """The same weights, batch and dropout masks (drawn by NumPy, so both sides drop the
    same units): loss and every gradient agree to 1e-10, bidirectional encoder, dropout
    0.3, the training (packed) and the plain path."""
    cfg = ModelConfig(src_vocab_size=11, tgt_vocab_size=13, embed_size=5, num_hiddens=6,
                      num_layers=2, dropout=0.3, bidirectional=True, cell=cell, model=model)
    rng = np.random.default_rng(7)
    params = init_params(cfg, GPU, rng)
    N, T_src, T_tgt = 5, 6, 7
    batch = gc.make_batch(rng, cfg, N, T_src, T_tgt)
    masks = draw_dropout_masks(cfg, F64, F64.generator(11), N, T_src, T_tgt)
    on_gpu = map_arrays(GPU.xp.asarray, masks)
    loss, cache = seq2seq_forward(params, cfg, batch.to(GPU.xp), on_gpu, packed=packed)
    grads = seq2seq_backward(1.0, cache).params

    net = TorchSeq2Seq(cfg).double().to(CUDA)
    net.load_state_dict({k: torch.as_tensor(to_numpy(v), device=CUDA)
                         for k, v in params.items()})
    net.train()
    t = {k: torch.as_tensor(getattr(batch, k), device=CUDA)
         for k in ("src", "tgt_in", "tgt", "tgt_valid_len", "src_valid_len")}
    t_loss = masked_ce(net(t["src"], t["tgt_in"], _to_torch(masks), t["src_valid_len"]),
                       t["tgt"], t["tgt_valid_len"])
    t_loss.backward()
    assert abs(float(loss) - t_loss.item()) <= 1e-10 * max(1.0, abs(t_loss.item()))
    named = dict(net.named_parameters())
    assert set(named) == set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(to_numpy(g), named[name].grad.cpu().numpy(), rtol=0,
                                   atol=1e-10, err_msg=name)


@pytest.mark.parametrize("impl", ["minis2s", "pytorch"])
def test_the_benchmarks_runs_train_on_the_gpu(impl, tiny_corpus):
    """One epoch of the benchmark's run of each contender with ``--backend cupy``: both
    train on the GPU, and say so."""
    from minis2s.bench.runs import bench_data, run_minis2s, run_torch
    from minis2s.presets import get_preset

    preset = get_preset("zh")
    data = bench_data(preset, tiny_corpus)
    run = run_minis2s if impl == "minis2s" else run_torch
    result = run(preset, data, 1, 0, "cupy")
    assert result.device == "gpu" and result.tokens_per_sec > 0
    assert np.isfinite(result.loss)
