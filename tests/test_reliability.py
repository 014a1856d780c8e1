"""Bad input and faults, end to end: what the user sees, and what is left on disk.

docs/reliability.md lists every case with the test here (or elsewhere) that proves it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minis2s.train.run as run_module
import minis2s.train.trainer as trainer_module
from minis2s import checkpoint
from minis2s.backend import get_backend
from minis2s.checkpoint import Checkpoint
from minis2s.cli import main
from minis2s.data import (
    DataError,
    DataSpec,
    Vocab,
    download,
    fetch,
    read_pairs,
    resolve_data_path,
)
from minis2s.decode import encode_sentences, translate
from minis2s.model import ModelConfig, param_shapes
from minis2s.params import ParamSet

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# A short run: the first 200 lines of the tiny corpus (4 batches of at most 64 pairs).
SHORT = ["--preset", "zh", "--examples", "199", "--quiet"]


def cli(*args, stdin: bytes | None = None, timeout: float = 120):
    """``python -m minis2s ARGS`` in a fresh process; stdout/stderr as text."""
    r = subprocess.run([sys.executable, "-m", "minis2s", *args], input=stdin,
                       capture_output=True, env=ENV, cwd=ROOT, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def train_in_process(corpus, out, epochs, *extra):
    return main(["train", "--data", str(corpus), *SHORT, "--epochs", str(epochs),
                 "--out", str(out), *extra])


def assert_same_training(a: Path, b: Path) -> None:
    """Two checkpoints hold bit-identical parameters and optimiser state."""
    ca, cb = checkpoint.load(a), checkpoint.load(b)
    assert list(ca.params) == list(cb.params)
    for name in ca.params:
        np.testing.assert_array_equal(ca.params[name], cb.params[name], err_msg=name)
    assert sorted(ca.extra) == sorted(cb.extra) == ["adam.m", "adam.v"]
    for name in ca.extra:
        np.testing.assert_array_equal(ca.extra[name], cb.extra[name], err_msg=name)
    sa, sb = ca.training["state"], cb.training["state"]
    for key in ("adam_t", "shuffle_rng", "dropout_rng", "batch"):
        assert sa[key] == sb[key], key
    assert ([h["loss"] for h in ca.training["history"]]
            == [h["loss"] for h in cb.training["history"]])


@pytest.fixture(scope="module")
def model(tiny_corpus, tmp_path_factory):
    """A checkpoint trained for one short epoch (quality does not matter here)."""
    out = tmp_path_factory.mktemp("model")
    assert train_in_process(tiny_corpus, out, 1) == 0
    return out / "checkpoint.npz"


# ------------------------------------------------------------------ 1. corpus input


def _bad_corpora(tmp: Path) -> dict[str, tuple[Path, str]]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "bad_utf8.txt").write_bytes(b"Go.\tVa !\nHi.\tSalut !\nBad\t\xff\xfe\n")
    (tmp / "no_pairs.txt").write_text("just words\n\n\tonly french\n", encoding="utf-8")
    (tmp / "empty.txt").write_bytes(b"")
    with zipfile.ZipFile(tmp / "evil.zip", "w") as zf:
        zf.writestr("fra-eng/fra.txt", "Go.\tVa !\n")
        zf.writestr("../evil.txt", "x")
    with zipfile.ZipFile(tmp / "no_member.zip", "w") as zf:
        zf.writestr("fra-eng/_about.txt", "about")
    (tmp / "not_a.zip").write_text("Go.\tVa !\n", encoding="utf-8")
    return {
        "missing": (tmp / "nope.txt", r"nope\.txt: data file not found"),
        "folder": (tmp, "not a regular file"),
        "bad_utf8": (tmp / "bad_utf8.txt", r"bad_utf8\.txt: line 3: invalid UTF-8"),
        "no_pairs": (tmp / "no_pairs.txt", "no valid 'English<TAB>French' line found"),
        "empty": (tmp / "empty.txt", "no valid 'English<TAB>French' line found"),
        "unsafe_zip": (tmp / "evil.zip", "unsafe member name '../evil.txt'"),
        "no_member_zip": (tmp / "no_member.zip", "zip has no member 'fra-eng/fra.txt'"),
        "not_a_zip": (tmp / "not_a.zip", "not a valid zip file"),
    }


@pytest.mark.parametrize("case", ["missing", "folder", "bad_utf8", "no_pairs", "empty",
                                  "unsafe_zip", "no_member_zip", "not_a_zip"])
def test_bad_corpus_is_one_error_line_and_exit_2(tmp_path, case):
    import re

    path, message = _bad_corpora(tmp_path / "c")[case]
    out = tmp_path / "out"
    rc, stdout, stderr = cli("train", "--data", str(path), "--out", str(out), "--quiet")
    assert rc == 2, stderr
    assert "Traceback" not in stderr and stdout == ""
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("minis2s: error: ") and re.search(message, last), stderr
    assert not (out / "checkpoint.npz").exists()


def test_awkward_but_valid_corpus_trains_and_reports_skips(tmp_path, capsys):
    lines = ["Go.\tVa !\tCC-BY 2.0 (France)", "", "no tab here", "Hi.\t  ",
             "Run!\tCours\u202f!", "Wait!\tAttendez\xa0!"]
    text = "\ufeff" + "\r\n".join(lines * 3) + "\r\n"
    corpus = tmp_path / "fra.txt"
    corpus.write_bytes(text.encode("utf-8"))
    assert main(["train", "--data", str(corpus), "--epochs", "1", "--out",
                 str(tmp_path / "o"), "--quiet"]) == 0
    err = capsys.readouterr().err.splitlines()
    skipped = [ln for ln in err if "skipped" in ln]
    assert skipped == ["minis2s: skipped 9 lines of fra.txt (3 blank, 3 without a tab, "
                       "3 with an empty side)"]
    ck = checkpoint.load(tmp_path / "o" / "checkpoint.npz")
    assert ck.training["train_pairs"] == 9
    # U+202F and U+00A0 are spaces, CR and BOM are gone: "!" is its own token
    assert {"cours", "attendez", "!"} <= set(ck.tgt_vocab.idx_to_token)


def test_unusable_output_folder_is_a_clear_error(tmp_path, tiny_corpus, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc = train_in_process(tiny_corpus, blocker / "run", 1)
    err = capsys.readouterr().err
    assert rc == 2
    assert f"minis2s: error: cannot use {blocker / 'run'} as the output folder" in err


# ------------------------------------------------------------------ 2. zip and download


def test_zip_bomb_is_refused_before_anything_is_decompressed(tmp_path, monkeypatch):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fra-eng/fra.txt", b"Go.\tVa !\n" + b"\0" * 3_000_000)

    def no_open(*args, **kwargs):
        raise AssertionError("a member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_open)
    monkeypatch.setattr(zipfile.ZipFile, "extract", no_open)
    with pytest.raises(DataError, match="compression ratio"):
        read_pairs(path)
    assert os.listdir(tmp_path) == ["bomb.zip"]


PAYLOAD = b"zip bytes " * 5000
PAYLOAD_SHA1 = __import__("hashlib").sha1(PAYLOAD).hexdigest()


class _Response(io.BytesIO):
    def __init__(self, body, on_read=None):
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body))}
        self.on_read = on_read

    def read(self, n=-1):
        if self.on_read is not None:
            self.on_read()
        return super().read(min(n, 4096) if n and n > 0 else n)


def test_download_is_written_to_partial_then_renamed(tmp_path):
    dest = tmp_path / "fra-eng.zip"
    seen = []

    def look():
        seen.append((dest.exists(), dest.with_name(dest.name + ".partial").exists()))

    download("http://x.invalid/f.zip", dest, PAYLOAD_SHA1,
             opener=lambda url, timeout=None: _Response(PAYLOAD, look), sleep=lambda s: None)
    assert seen and all(not final for final, _ in seen)  # never visible while incomplete
    assert any(partial for _, partial in seen[1:])
    assert dest.read_bytes() == PAYLOAD and os.listdir(tmp_path) == ["fra-eng.zip"]


def test_interrupted_download_leaves_nothing(tmp_path):
    dest = tmp_path / "fra-eng.zip"
    calls = []

    def ctrl_c_on_third_read():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download("http://x.invalid/f.zip", dest, PAYLOAD_SHA1,
                 opener=lambda url, timeout=None: _Response(PAYLOAD, ctrl_c_on_third_read),
                 sleep=lambda s: None)
    assert os.listdir(tmp_path) == []


def test_a_stale_partial_file_is_never_taken_for_the_corpus(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fra-eng.zip.partial").write_bytes(PAYLOAD[:100])  # left by a killed process
    monkeypatch.delenv("MINIS2S_DATA", raising=False)
    monkeypatch.setenv("MINIS2S_CACHE", str(cache))
    monkeypatch.setattr(fetch, "DATA_SHA1", PAYLOAD_SHA1)

    def offline(url, timeout=None):
        raise urllib.error.URLError("offline")

    with pytest.raises(DataError, match="could not download"):
        resolve_data_path(None, opener=offline, sleep=lambda s: None, warn=lambda m: None)
    assert not (cache / "fra-eng.zip").exists()
    got = resolve_data_path(None, opener=lambda url, timeout=None: _Response(PAYLOAD),
                            sleep=lambda s: None, warn=lambda m: None)
    assert got.read_bytes() == PAYLOAD and os.listdir(cache) == ["fra-eng.zip"]


# ------------------------------------------------------------------ 3. translation input

AWKWARD = [
    "",  # empty
    "   \t ",  # whitespace only
    "\u202f\xa0",  # non-breaking spaces only
    "Go.",
    "zzqx blorf wibble .",  # unknown words
    "我今天很高兴。",  # Chinese
    "أنا في البيت .",  # Arabic
    "Я дома .",  # Cyrillic
    "😀 🚀 👍🏽",  # emoji
    "he is calm and i am home and we run and you see it .",  # longer than num_steps
    "\u200b\u2028\x85\x0b",  # zero-width and unusual breaks inside one line
]


def test_translate_awkward_lines_give_one_line_each(model):
    raw = "\n".join(AWKWARD).encode("utf-8") + b"\nbad \xff\xfe bytes .\r\nlast\r\n"
    rc, stdout, stderr = cli("translate", "--model", str(model), stdin=raw)
    assert rc == 0, stderr
    assert "Traceback" not in stderr
    out = stdout.split("\n")
    assert out[-1] == "" and len(out) - 1 == len(AWKWARD) + 2
    assert out[:3] == ["", "", ""]  # empty and blank lines stay empty
    ck = checkpoint.load(model)
    assert f'sentence 10 ("he is calm and i ...") has 15 tokens; the model reads only the ' \
           f"first {ck.data.num_steps}, without <eos>" in stderr
    assert "input line 12 is not valid UTF-8" in stderr


def test_unknown_words_and_scripts_map_to_unk(model):
    ck = checkpoint.load(model)
    ids = encode_sentences(["zzqx 我今天 😀 go ."], ck.src_vocab, ck.data.num_steps)
    unk, eos = ck.src_vocab.unk, ck.src_vocab.eos
    assert ids[0, :3].tolist() == [unk, unk, unk]
    assert ids[0, 3] == ck.src_vocab["go"] != unk
    assert ids[0, 5] == eos


def test_truncation_warning_names_the_sentence_across_chunks(model):
    ck = checkpoint.load(model)
    backend = get_backend("numpy")
    params = ParamSet({k: v.shape for k, v in ck.params.items()}, backend.xp, backend.dtype)
    params.assign(ck.params)
    long = "one two three four five six seven eight nine ten eleven"
    sentences = ["go .", "", "i lost .", "he's calm .", "i'm home .", long, "go ."]
    warnings: list[str] = []
    outs = translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, sentences,
                     ck.data.num_steps, backend, batch_size=2, warn=warnings.append)
    assert len(outs) == len(sentences) and outs[1] == ""
    assert warnings == [f'sentence 6 ("one two three four five ...") has 11 tokens; the '
                        f"model reads only the first {ck.data.num_steps}, without <eos>"]
    # in one chunk they translate the same: the chunks are put back in order
    assert outs == translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, sentences,
                             ck.data.num_steps, backend)


def test_translate_into_a_closed_pipe_is_quiet(model):
    lines = ("go .\ni lost .\n" * 10000).encode()
    p = subprocess.Popen([sys.executable, "-m", "minis2s", "translate", "--model",
                          str(model)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    p.stdin.write(lines)
    p.stdin.close()
    first = p.stdout.readline()
    p.stdout.close()  # like `| head -n 1`
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert first.endswith(b"\n")  # a whole line came (an untrained model may say nothing)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert p.returncode in (0, 141)


def test_checkpoint_without_training_state_still_translates(model, tmp_path):
    ck = checkpoint.load(model)
    bare = Checkpoint(ck.params, ck.config, ck.data, ck.src_vocab, ck.tgt_vocab,
                      {"epochs": 1})
    path = checkpoint.save(tmp_path / "bare.npz", bare)
    rc, stdout, stderr = cli("translate", "--model", str(path), "go .", "i lost .")
    assert rc == 0 and len(stdout.splitlines()) == 2, stderr


# ------------------------------------------------------------------ 4. killed while saving

_SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    from minis2s import checkpoint
    from minis2s.checkpoint import Checkpoint
    from minis2s.data import DataSpec, Vocab
    from minis2s.model import ModelConfig, param_shapes

    def save(path, version):
        vocab = Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>"]
                                  + [f"w{i}" for i in range(6000)])
        cfg = ModelConfig(src_vocab_size=len(vocab), tgt_vocab_size=len(vocab),
                          embed_size=64, num_hiddens=64, num_layers=2, dropout=0.0)
        params = {k: np.full(s, version, np.float32) for k, s in param_shapes(cfg).items()}
        checkpoint.save(path, Checkpoint(params, cfg, DataSpec(num_steps=10), vocab, vocab,
                                         {"version": version}))

    if __name__ == "__main__":
        path, version = sys.argv[1], int(sys.argv[2])
        while True:
            print(version, flush=True)  # about to write this version
            save(path, version)
            version += 1
""")


def test_sigkill_while_saving_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    helpers: dict = {"__name__": "saver"}
    exec(_SAVER, helpers)
    helpers["save"](path, 0)
    rng = np.random.default_rng(1)
    last = 0  # the version on disk
    for _ in range(5):
        p = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), str(last + 1)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                             cwd=ROOT)
        first = p.stdout.readline()  # the child is up and writing
        assert first, p.stderr.read().decode()
        time.sleep(float(rng.uniform(0.0, 0.4)))
        p.kill()
        p.wait(timeout=30)
        started = [int(v) for v in (first + p.stdout.read()).split()]
        being_written = started[-1]
        ck = checkpoint.load(path)  # never a half-written file
        version = ck.training["version"]
        assert version in (being_written - 1, being_written), (version, being_written)
        assert sum(v.nbytes for v in ck.params.values()) > 4_000_000  # a few MB
        for value in ck.params.values():
            assert (value == version).all()  # all of one version, not a mix
        last = version
    assert last >= 2


# ------------------------------------------------------------------ 5. training faults


def _nan_after(n_calls, monkeypatch, what):
    """From call ``n_calls + 1`` on, the loss (or the gradient norm) becomes non-finite."""
    name = "seq2seq_forward" if what == "loss" else "clip_grad_norm_"
    real = getattr(trainer_module, name)
    calls = [0]

    def patched(*args, **kwargs):
        calls[0] += 1
        result = real(*args, **kwargs)
        if calls[0] <= n_calls:
            return result
        if what == "loss":
            return float("nan"), result[1]
        return float("inf")

    monkeypatch.setattr(trainer_module, name, patched)


@pytest.mark.parametrize("what", ["loss", "norm"])
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
        tiny_corpus, tmp_path, monkeypatch, capsys, what):
    assert train_in_process(tiny_corpus, tmp_path / "one", 1) == 0  # epoch 1, reference
    _nan_after(4 + 2, monkeypatch, what)  # epoch 1 has 4 batches: epoch 2, batch 3
    capsys.readouterr()
    rc = train_in_process(tiny_corpus, tmp_path / "run", 5)
    err = capsys.readouterr().err
    assert rc == 2
    line = err.strip().splitlines()[-1]
    bad = "loss nan" if what == "loss" else "gradient norm inf"
    assert line.startswith("minis2s: error: in epoch 2/5 after 2 batches: ")
    assert bad in line and "is not finite" in line
    assert line.endswith(f"{tmp_path / 'run' / 'checkpoint.npz'} holds epoch 1, the last "
                         "good one")
    assert_same_training(tmp_path / "one" / "checkpoint.npz",
                         tmp_path / "run" / "checkpoint.npz")


def test_non_finite_loss_in_the_first_epoch_saves_nothing(tiny_corpus, tmp_path,
                                                          monkeypatch, capsys):
    _nan_after(1, monkeypatch, "loss")
    assert train_in_process(tiny_corpus, tmp_path, 3) == 2
    assert "no checkpoint was written" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.npz").exists()


def test_non_finite_loss_in_a_resumed_run_leaves_its_checkpoint(tiny_corpus, tmp_path,
                                                                  monkeypatch, capsys):
    assert train_in_process(tiny_corpus, tmp_path, 1) == 0
    before = (tmp_path / "checkpoint.npz").read_bytes()
    _nan_after(1, monkeypatch, "loss")  # the resumed run's second step
    capsys.readouterr()
    assert train_in_process(tiny_corpus, tmp_path, 3, "--resume") == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("minis2s: error: in epoch 2/3 after 1 batch: loss nan")
    assert last.endswith(f"{tmp_path / 'checkpoint.npz'} is left as it was")
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def _start_long_run(corpus, out):
    return subprocess.Popen(
        [sys.executable, "-m", "minis2s", "train", "--data", str(corpus), *SHORT,
         "--epochs", "100000", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)


def _wait_for(path: Path, proc, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_saves_a_checkpoint_and_exits_130(tiny_corpus, tmp_path, presses):
    out = tmp_path / "run"
    proc = _start_long_run(tiny_corpus, out)
    ckpt = out / "checkpoint.npz"
    _wait_for(ckpt, proc)
    time.sleep(0.05 if presses == 1 else 0.13)  # somewhere inside an epoch
    sent = time.monotonic()
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.005)
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    stderr = stderr.decode()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stdout == b""
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("minis2s: interrupted ") and last.endswith(
        f"checkpoint in {ckpt} (go on with --resume)")
    assert not list(out.glob("*.tmp"))
    ck = checkpoint.load(ckpt)
    done, batch = ck.training["epochs"], ck.training["state"]["batch"]
    assert done >= 1 and 0 <= batch < 4
    if presses == 1:  # the checkpoint goes on: one more epoch, from where it stopped
        rc = train_in_process(tiny_corpus, out, done + 1, "--resume")
        assert rc == 0
        assert checkpoint.load(ckpt).training["epochs"] == done + 1


def test_ctrl_c_before_training_saves_nothing(tiny_corpus, tmp_path, monkeypatch, capsys):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "load_data", ctrl_c)  # while reading the corpus
    before = signal.getsignal(signal.SIGINT)  # Python's, or SIG_IGN in a background job
    assert train_in_process(tiny_corpus, tmp_path, 2) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "minis2s: interrupted"
    assert not (tmp_path / "checkpoint.npz").exists()
    assert signal.getsignal(signal.SIGINT) is before  # the process's own handler is back


def test_a_fresh_run_warns_before_replacing_a_checkpoint(tiny_corpus, model, tmp_path,
                                                         capsys):
    (tmp_path / "checkpoint.npz").write_bytes(model.read_bytes())
    before = signal.getsignal(signal.SIGINT)
    assert train_in_process(tiny_corpus, tmp_path, 1, "--overwrite") == 0
    assert (f"minis2s: {tmp_path / 'checkpoint.npz'} exists and will be replaced by this "
            "new run (--overwrite)") in capsys.readouterr().err.splitlines()
    assert signal.getsignal(signal.SIGINT) is before


class _StopAfter:
    """Wrap ``Trainer.step`` to press Ctrl-C after ``n`` steps: ``mode`` "raise" raises
    KeyboardInterrupt instead of step n + 1; "signal" sends a real SIGINT inside step n."""

    def __init__(self, monkeypatch, n, mode):
        self.real, self.n, self.mode, self.calls = trainer_module.Trainer.step, n, mode, 0
        wrapper = self

        def step(trainer, *args):
            wrapper.calls += 1
            if wrapper.mode == "raise" and wrapper.calls == wrapper.n + 1:
                raise KeyboardInterrupt
            if wrapper.mode == "signal" and wrapper.calls == wrapper.n:
                os.kill(os.getpid(), signal.SIGINT)  # arrives mid-step
            return wrapper.real(trainer, *args)

        monkeypatch.setattr(trainer_module.Trainer, "step", step)


@pytest.fixture(scope="module")
def uninterrupted(tiny_corpus, tmp_path_factory):
    """Three epochs straight through: what every resumed run must reproduce exactly."""
    out = tmp_path_factory.mktemp("straight")
    assert train_in_process(tiny_corpus, out, 3) == 0
    return out / "checkpoint.npz"


@pytest.mark.parametrize(("stop_after", "mode"), [(4, "raise"), (6, "raise"), (9, "signal"),
                                                  (0, "raise")])
def test_resume_gives_bit_identical_training(tiny_corpus, tmp_path, monkeypatch, capsys,
                                             uninterrupted, stop_after, mode):
    """Stopped after epoch 1 (4 steps), inside epoch 2, by a real SIGINT in the middle of
    a step of epoch 3, or before the first step; then resumed to 3 epochs."""
    stopper = _StopAfter(monkeypatch, stop_after, mode)
    assert train_in_process(tiny_corpus, tmp_path, 3) == 130
    err = capsys.readouterr().err
    assert "minis2s: interrupted " in err and "Traceback" not in err
    ck = checkpoint.load(tmp_path / "checkpoint.npz")
    assert ck.training["state"]["adam_t"] == stop_after
    assert ck.training["epochs"] * 4 + ck.training["state"]["batch"] == stop_after
    monkeypatch.setattr(trainer_module.Trainer, "step", stopper.real)
    assert train_in_process(tiny_corpus, tmp_path, 3, "--resume") == 0
    assert "minis2s: resuming " in capsys.readouterr().err
    assert_same_training(uninterrupted, tmp_path / "checkpoint.npz")


def test_trainer_goes_on_in_process_after_an_interrupt(tiny_corpus, monkeypatch):
    """The same Trainer, fitted again after a KeyboardInterrupt, redraws the cut epoch's
    order and skips its done batches: the result equals an uninterrupted fit."""
    from minis2s.data import load_data
    from minis2s.presets import get_preset
    from minis2s.train import Trainer, model_config

    preset = get_preset("zh").with_overrides(epochs=2, num_examples=199)
    data = load_data(tiny_corpus, preset.data_spec(), warn=lambda m: None)
    assert data.spec == DataSpec(num_steps=10, num_examples=199)
    backend = get_backend("numpy")
    straight = Trainer(model_config(preset, data), preset, backend)
    straight.fit(data, 2, progress=False)
    cut = Trainer(model_config(preset, data), preset, backend)
    stopper = _StopAfter(monkeypatch, 6, "raise")
    with pytest.raises(KeyboardInterrupt):
        cut.fit(data, 2, progress=False)
    assert len(cut.history) == 1 and cut.epoch_progress.batches == 2
    monkeypatch.setattr(trainer_module.Trainer, "step", stopper.real)
    cut.fit(data, 1, progress=False)
    np.testing.assert_array_equal(cut.params.flat, straight.params.flat)
    a, b = cut.opt.state_dict(), straight.opt.state_dict()
    assert a["t"] == b["t"] == 8
    np.testing.assert_array_equal(a["m"], b["m"])
    np.testing.assert_array_equal(a["v"], b["v"])
    assert [h.loss for h in cut.history] == [h.loss for h in straight.history]


def test_resume_counts_epochs_in_all(tiny_corpus, tmp_path, monkeypatch, capsys,
                                     uninterrupted):
    assert train_in_process(tiny_corpus, tmp_path, 1) == 0
    stopper = _StopAfter(monkeypatch, 10**9, "raise")
    assert train_in_process(tiny_corpus, tmp_path, 3, "--resume") == 0
    assert stopper.calls == 2 * 4  # epochs 2 and 3 only
    assert_same_training(uninterrupted, tmp_path / "checkpoint.npz")
    history = checkpoint.load(tmp_path / "checkpoint.npz").training["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    capsys.readouterr()
    assert train_in_process(tiny_corpus, tmp_path, 3, "--resume") == 0  # nothing left
    assert stopper.calls == 8
    assert "nothing to train" in capsys.readouterr().err


def _strip_state(path: Path) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if not k.startswith("extra/")}
    meta = json.loads(str(arrays["meta"]))
    meta["training"] = {"epochs": 1}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.mark.parametrize(("change", "message"), [
    ("missing", "cannot resume: no checkpoint at "),
    ("no_state", "holds no optimiser state, so it cannot be resumed"),
    ("preset", "was trained with preset 'zh', not 'en'; resume with --preset zh"),
    ("examples", "num_examples 199 there, 99 asked"),
    ("seed", "was trained with --seed 0, not 3"),
    ("data", "was trained on other data"),
])
def test_resume_refuses_what_it_cannot_continue(tiny_corpus, model, tmp_path, capsys,
                                                change, message):
    out = tmp_path / "run"
    if change != "missing":
        out.mkdir()
        (out / "checkpoint.npz").write_bytes(model.read_bytes())
    args = ["train", "--data", str(tiny_corpus), *SHORT, "--epochs", "2", "--out", str(out),
            "--resume"]
    if change == "no_state":
        _strip_state(out / "checkpoint.npz")
    elif change == "preset":
        args[args.index("zh")] = "en"
    elif change == "examples":
        args[args.index("199")] = "99"
    elif change == "seed":
        args += ["--seed", "3"]
    elif change == "data":
        other = tmp_path / "other.txt"
        lines = tiny_corpus.read_text(encoding="utf-8").splitlines(keepends=True)
        other.write_text("".join(lines[:150]), encoding="utf-8")
        args[args.index(str(tiny_corpus))] = str(other)
    before = (out / "checkpoint.npz").read_bytes() if change != "missing" else None
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("minis2s: error: ") and message in err, err
    if before is not None:
        assert (out / "checkpoint.npz").read_bytes() == before


def _damage(path: Path, what: str) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    if what == "rng":
        meta["training"]["state"]["shuffle_rng"] = {"bit_generator": "PCG64", "state": 3}
    elif what == "history":
        meta["training"]["history"] = [1, 2]
    elif what == "settings":
        meta["training"]["lr"] = "zh"
    elif what == "no_total_epochs":
        del meta["training"]["total_epochs"]
    elif what == "moments":
        arrays["extra/adam.v"] = arrays["extra/adam.v"][:-1]
    elif what == "nan_moments":
        arrays["extra/adam.m"][0] = np.nan
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.mark.parametrize(("what", "message"), [
    ("rng", "unreadable training state"), ("history", "unreadable training state"),
    ("settings", "unreadable training settings"),
    ("no_total_epochs", "unreadable training settings (no 'total_epochs')"),
    ("moments", "adam.v has shape"),
    ("nan_moments", "adam.m holds NaN or Inf")])
def test_resume_refuses_a_damaged_training_state(tiny_corpus, model, tmp_path, capsys,
                                                 what, message):
    (tmp_path / "checkpoint.npz").write_bytes(model.read_bytes())
    _damage(tmp_path / "checkpoint.npz", what)
    assert train_in_process(tiny_corpus, tmp_path, 2, "--resume") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("minis2s: error: ") and message in last, last


# ------------------------------------------------------------------ 6. determinism


def test_two_processes_write_identical_checkpoints(tiny_corpus, tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "minis2s", "train", "--data",
                               str(tiny_corpus), *SHORT, "--epochs", "2", "--seed", "7",
                               "--out", str(tmp_path / name)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                              cwd=ROOT) for name in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    assert_same_training(tmp_path / "a" / "checkpoint.npz", tmp_path / "b" / "checkpoint.npz")
    with np.load(tmp_path / "a" / "checkpoint.npz") as a, \
            np.load(tmp_path / "b" / "checkpoint.npz") as b:
        assert a.files == b.files
        for name in a.files:
            if name != "meta":
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_checkpoint_meta_round_trips_a_training_state(tmp_path):
    vocab = Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>", "a"])
    cfg = ModelConfig(src_vocab_size=5, tgt_vocab_size=5, embed_size=2, num_hiddens=2,
                      num_layers=1, dropout=0.0)
    params = {k: np.zeros(s, np.float32) for k, s in param_shapes(cfg).items()}
    state = {"shuffle_rng": np.random.default_rng(3).bit_generator.state, "batch": 2}
    ck = Checkpoint(params, cfg, DataSpec(num_steps=4), vocab, vocab, {"state": state},
                    {"adam.m": np.arange(3.0), "adam.v": np.ones(3)})
    back = checkpoint.load(checkpoint.save(tmp_path / "c.npz", ck))
    assert back.training["state"] == state  # 128-bit generator state survives JSON
    assert back.data == DataSpec(num_steps=4)
    np.testing.assert_array_equal(back.extra["adam.m"], np.arange(3.0))
