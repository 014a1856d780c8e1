"""evaluate_model decodes as it is asked: beam width, length penalty and the decoder's
context reach the decoding, for a generated task and for the corpus alike; its outputs
are those of :func:`minis2s.decode.translations` with the same settings."""

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.checkpoint import Checkpoint
from minis2s.data import DataSpec, load_data
from minis2s.data.tasks import load_task_data, make_task
from minis2s.decode import translations
from minis2s.evaluate import evaluate_model
from minis2s.model import ModelConfig, init_params

F64 = get_backend("numpy", "float64")
# (beam, length penalty, context): each pair of them decodes the test part differently
SETTINGS = [(1, 0.75, "encoder"), (1, 0.75, "decoder"), (4, 0.0, "encoder"),
            (4, 1.0, "encoder")]


def _checkpoint(data, spec, seed, task=None):
    cfg = ModelConfig(src_vocab_size=len(data.src_vocab), tgt_vocab_size=len(data.tgt_vocab),
                      embed_size=6, num_hiddens=8, num_layers=2, dropout=0.0)
    params = init_params(cfg, F64, np.random.default_rng(seed))
    params["decoder.dense.bias"][data.tgt_vocab.eos] += 0.3  # outputs of many lengths
    return Checkpoint({k: np.asarray(v) for k, v in params.items()}, cfg, spec,
                      data.src_vocab, data.tgt_vocab, {}, task=task)


def _outputs(ck, data_path=None):
    found = {}
    for beam, alpha, context in SETTINGS:
        ev = evaluate_model(ck, F64, data_path, beam=beam, length_penalty=alpha,
                            context_from=context)
        rules = {} if ck.task is None else {"rules": ck.task}
        expected = translations(ck.params_on(F64), ck.config, ck.src_vocab, ck.tgt_vocab,
                                ev.sources, ck.data.num_steps, F64, beam=beam,
                                length_penalty=alpha, context_from=context, **rules)
        assert ev.hyps == [t.text for t in expected]
        found[beam, alpha, context] = ev.hyps
    return list(found.values())


def _all_different(outputs):
    return all(outputs[i] != outputs[j] for i in range(len(outputs))
               for j in range(i + 1, len(outputs)))


def test_a_tasks_evaluation_decodes_with_the_beam_the_penalty_and_the_context_asked():
    task = make_task("reverse", {"train_size": 200, "max_len": 6})
    spec = DataSpec(num_steps=8, valid_size=0, test_size=40)
    ck = _checkpoint(load_task_data(task, spec), spec, seed=1, task=task)
    assert _all_different(_outputs(ck))  # so a setting that did not arrive would show


def test_the_corpus_evaluation_decodes_with_the_context_asked(tiny_corpus):
    spec = DataSpec(num_steps=8, valid_size=0, test_size=40)
    ck = _checkpoint(load_data(tiny_corpus, spec, warn=lambda m: None), spec, seed=1)
    greedy_encoder, greedy_decoder, *_ = _outputs(ck, tiny_corpus)
    assert greedy_encoder != greedy_decoder


def test_a_tasks_pairs_that_do_not_give_the_checkpoints_vocabulary_are_refused():
    from minis2s.data import DataError, Vocab

    task = make_task("reverse", {"train_size": 200, "max_len": 6})
    spec = DataSpec(num_steps=8, valid_size=0, test_size=40)
    ck = _checkpoint(load_task_data(task, spec), spec, seed=1, task=task)
    ck.src_vocab = Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>", "x"])
    with pytest.raises(DataError) as refused:
        evaluate_model(ck, F64, where="runs/r")
    assert str(refused.value) == ("the pairs of task reverse do not give the vocabulary "
                                  "runs/r was trained with: they are not the same data")
