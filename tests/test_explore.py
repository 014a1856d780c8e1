"""The explorer's numbers and its server: connectivity against finite differences, the
beam tree's choice and the attention weights against ``minis2s translate``, bad input and
a burst of concurrent requests against a live server (loopback only)."""

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.cli import main
from minis2s.decode import encode_sentences
from minis2s.explore.data import Explorer, beam_tree, connectivity
from minis2s.explore.page import static_page
from minis2s.explore.server import MAX_BODY, make_server
from minis2s.model.steps import start, step

SENTENCES = ["I am home.", "you run it", "we see he is calm.", "She is lost"]


def _train(corpus, out, *flags):
    code = main(["train", "--data", str(corpus), "--preset", "zh", "--examples", "399",
                 "--epochs", "3", "--quiet", "--out", str(out), *flags])
    assert code == 0
    return out / "checkpoint.npz"


@pytest.fixture(scope="module")
def attention_ckpt(tiny_corpus, tmp_path_factory):
    return _train(tiny_corpus, tmp_path_factory.mktemp("explore_att"), "--model", "attention")


@pytest.fixture(scope="module")
def seq2seq_ckpt(tiny_corpus, tmp_path_factory):
    return _train(tiny_corpus, tmp_path_factory.mktemp("explore_s2s"), "--cell", "lstm",
                  "--valid-size", "20")


@pytest.fixture(scope="module")
def explorers(attention_ckpt, seq2seq_ckpt):
    return [Explorer.load(attention_ckpt), Explorer.load(seq2seq_ckpt)]


@pytest.fixture(scope="module")
def server(explorers):
    srv = make_server(explorers, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(server, method, path, body=None, headers=None, raw=False):
    """(status, parsed JSON or the bytes) of one request to the test server."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
    finally:
        conn.close()
    if raw:
        return res.status, data
    return res.status, json.loads(data)


# ------------------------------------------------------------------ exact numbers


def _log_p(ex, params, sentence, out_ids, t):
    """log p(y_t) computed step by step (the path translation takes), float64."""
    cfg = ex.ck.config
    src = encode_sentences([sentence], ex.ck.src_vocab, ex.num_steps)
    valid = np.array([(src != ex.ck.src_vocab.pad).sum()])
    state, memory = start(params, cfg, src, valid)
    prev = np.array([ex.ck.tgt_vocab.bos])
    for u in range(t + 1):
        logits, state, _ = step(params, cfg, prev, state, memory)
        prev = np.array([out_ids[u]])
    z = np.asarray(logits, dtype=np.float64)[0]
    z = z - z.max()
    return float(z[out_ids[t]] - np.log(np.exp(z).sum()))


@pytest.mark.parametrize("which", [0, 1])
def test_connectivity_equals_finite_differences(explorers, which):
    """‖∂log p(y_t)/∂e_s‖ from the backward equals a central-difference estimate, for each
    source position whose token appears once and for the decoder's <bos> input."""
    ex = explorers[which]
    sentence = "we see he is calm ."
    tokens = ex.translate(sentence, 1, 0.75)["greedy"]["tokens"]
    got = connectivity(ex, sentence, tokens)
    tv, sv = ex.ck.tgt_vocab, ex.ck.src_vocab
    out_ids = (tv[tokens] + [tv.eos])[:ex.num_steps]
    src_tokens = got["source_tokens"]
    params = {k: np.array(v, dtype=np.float64) for k, v in ex.ck.params.items()}
    eps = 1e-6
    checked = 0
    for t in range(len(out_ids)):
        for s, tok in enumerate(src_tokens):
            if src_tokens.count(tok) != 1:
                continue
            row = sv[tok]
            grad = np.zeros(ex.ck.config.embed_size)
            for i in range(len(grad)):
                p = dict(params)
                table = params["encoder.embedding.weight"].copy()
                table[row, i] += eps
                p["encoder.embedding.weight"] = table
                up = _log_p(ex, p, sentence, out_ids, t)
                table = table.copy()
                table[row, i] -= 2 * eps
                p["encoder.embedding.weight"] = table
                grad[i] = (up - _log_p(ex, p, sentence, out_ids, t)) / (2 * eps)
            assert got["source"][t][s] == pytest.approx(np.linalg.norm(grad), rel=1e-5,
                                                        abs=1e-9)
            checked += 1
        grad = np.zeros(ex.ck.config.embed_size)  # the decoder's first input, <bos>
        for i in range(len(grad)):
            vals = []
            for sign in (1, -1):
                p = dict(params)
                table = params["decoder.embedding.weight"].copy()
                table[tv.bos, i] += sign * eps
                p["decoder.embedding.weight"] = table
                vals.append(_log_p(ex, p, sentence, out_ids, t))
            grad[i] = (vals[0] - vals[1]) / (2 * eps)
        assert got["decoder_inputs"][t][0] == pytest.approx(np.linalg.norm(grad), rel=1e-5,
                                                            abs=1e-9)
    assert checked >= 5


@pytest.mark.parametrize("which", [0, 1])
def test_connectivity_in_float32_agrees_with_float64(explorers, which):
    """What the page shows (float32) is the tested float64 computation to display
    precision, and it is the one explore() runs."""
    ex = explorers[which]
    sentence = "we see he is calm ."
    tokens = ex.translate(sentence, 1, 0.75)["greedy"]["tokens"]
    g64 = connectivity(ex, sentence, tokens)
    g32 = connectivity(ex, sentence, tokens, "float32")
    assert ex.explore(sentence, 2, parts=("connectivity",))["gradients"] == g32
    pairs = [(g32[k], g64[k]) for k in ("source", "decoder_inputs")]
    pairs += [(g32["state"][side], g64["state"][side]) for side in ("encoder", "decoder")]
    pairs += [(g32["flow"][side], g64["flow"][side]) for side in ("encoder", "decoder")]
    pairs += [(g32["flow"][k], g64["flow"][k]) for k in ("loss", "grad_norm")]
    for a, b in pairs:
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape
        assert np.allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max())
        assert np.all((a == 0) == (b == 0))  # causality's zeros stay exact


@pytest.mark.parametrize("decoder_hiddens", [None, 5], ids=["equal", "bridge"])
@pytest.mark.parametrize("model", ["seq2seq", "attention"])
def test_connectivity_state_norms_equal_one_backward_per_step(explorers, model,
                                                             decoder_hiddens):
    """On a bidirectional two-layer LSTM (fresh weights; its decoder as wide as the
    encoder, or narrower through the bridge): each output step's state gradients equal
    those of the whole model's backward with ``target_step`` t, one sentence, every step
    run (the explorer runs row t to step t only, and the output layer at that step
    only)."""
    import dataclasses

    from minis2s.checkpoint import Checkpoint
    from minis2s.data import make_batch
    from minis2s.model import init_params, seq2seq_backward, seq2seq_forward

    base = explorers[0].ck
    cfg = dataclasses.replace(base.config, model=model, cell="lstm", bidirectional=True,
                              num_layers=2, decoder_hiddens=decoder_hiddens)
    params = init_params(cfg, get_backend("numpy", "float32"), np.random.default_rng(3))
    ck = Checkpoint({k: np.asarray(v) for k, v in params.items()}, cfg, base.data,
                    base.src_vocab, base.tgt_vocab)
    ex = Explorer(ck, "fresh")
    sentence = "we see he is calm ."
    tokens = ex.translate(sentence, 1, 0.75)["greedy"]["tokens"][:4]
    got = connectivity(ex, sentence, tokens)
    tv, T = ck.tgt_vocab, ex.num_steps
    ids = tv[tokens] + [tv.eos]
    src = encode_sentences([sentence], ck.src_vocab, T)
    valid = int((src != ck.src_vocab.pad).sum())
    tgt = np.full((1, T), tv.pad)
    tgt[0, :len(ids)] = ids
    batch = make_batch(src, [valid], tgt, [len(ids)], tv.bos)
    p64 = ck.params_on(get_backend("numpy", "float64"))
    _, cache = seq2seq_forward(p64, cfg, batch, packed=False)
    for t in range(len(ids)):  # T times the seed's loss at step t: -log p(y_t)
        rec = seq2seq_backward(float(T), cache, record="state", target_step=t).recorded
        for k in range(2):
            enc = np.sqrt(sum((np.asarray(rec["encoder"][2 * k + d].h) ** 2).sum(axis=1)
                              for d in range(2)))[:valid]
            dec = np.linalg.norm(np.asarray(rec["decoder"][k].h), axis=1)[:len(ids)]
            assert np.allclose(got["state"]["encoder"][k][t], enc, rtol=1e-9, atol=1e-15)
            assert np.allclose(got["state"]["decoder"][k][t], dec, rtol=1e-9, atol=1e-15)


def test_connectivity_is_causal_and_flow_matches_gradflow(explorers):
    """No output reads a later decoder input; the per-sentence flow is gradflow's."""
    from minis2s.data import make_batch
    from minis2s.gradflow import gradient_flow

    ex = explorers[0]
    sentence = "you run it"
    tokens = ex.translate(sentence, 1, 0.75)["greedy"]["tokens"]
    got = connectivity(ex, sentence, tokens)
    dec = np.array(got["decoder_inputs"])
    assert np.all(dec[np.triu_indices_from(dec, k=1)] == 0)
    assert np.all(np.diag(dec) > 0)
    src = encode_sentences([sentence], ex.ck.src_vocab, ex.num_steps)
    valid = int((src != ex.ck.src_vocab.pad).sum())
    tv = ex.ck.tgt_vocab
    ids = tv[tokens] + [tv.eos]
    tgt = np.full((1, ex.num_steps), tv.pad)
    tgt[0, :len(ids)] = ids
    flow = gradient_flow(ex.ck.params_on(get_backend("numpy", "float64")), ex.ck.config,
                         make_batch(src, [valid], tgt, [len(ids)], tv.bos))
    for side, n in (("decoder", len(ids)), ("encoder", valid)):
        want = [row[:n] for row in getattr(flow, side)]
        assert np.allclose(got["flow"][side], want, rtol=1e-10, atol=0)
    assert got["flow"]["grad_norm"] == pytest.approx(flow.grad_norm, rel=1e-10)
    assert got["flow"]["loss"] == pytest.approx(flow.loss, rel=1e-10)
    assert got["flow"]["clip_factor"] == pytest.approx(flow.clip_factor(1.0), rel=1e-10)
    # the state gradients of each step's loss add up to the whole (the seed's loss is the
    # mean over T steps of -log p)
    total = np.array(got["state"]["decoder"][0]).sum(axis=0)
    assert np.all(total >= np.array(flow.decoder[0][:len(ids)]) * ex.num_steps - 1e-9)


@pytest.mark.parametrize("beam", [2, 3, 5])
def test_beam_tree_choice_equals_translate_beam(explorers, attention_ckpt, seq2seq_ckpt,
                                                capsys, beam):
    for ex, ckpt in zip(explorers, (attention_ckpt, seq2seq_ckpt)):
        capsys.readouterr()
        assert main(["translate", "--model", str(ckpt), "--beam", str(beam),
                     *SENTENCES]) == 0
        want = capsys.readouterr().out.splitlines()
        for sentence, text in zip(SENTENCES, want):
            tree = beam_tree(ex, sentence, beam, 0.75)
            assert tree["text"] == text
            nodes = tree["nodes"]
            best = nodes[tree["best"]]
            assert best["status"] in ("finished", "live")
            for n in nodes[1:]:  # L counts the tokens, <eos> included: the step
                assert n["score"] == pytest.approx(n["log_prob"] / n["step"] ** 0.75,
                                                   rel=1e-12)
                assert nodes[n["parent"]]["step"] == n["step"] - 1
            for t in range(1, max(n["step"] for n in nodes) + 1):  # at most K kept a step
                kept = [n for n in nodes if n["step"] == t and n["status"] != "pruned"]
                assert 1 <= len(kept) <= beam


def test_attention_equals_translate_json(server, attention_ckpt, capsys):
    """The same numbers exactly, for a sentence translated alone (in a batch of several,
    float32 rounding may differ in the last digit)."""
    for beam in (1, 3):
        for sentence in SENTENCES:
            capsys.readouterr()
            assert main(["translate", "--model", str(attention_ckpt), "--json", "--beam",
                         str(beam), sentence]) == 0
            want = json.loads(capsys.readouterr().out)
            # alone, and with the beam tree (whose search then gives the beam translation)
            for parts in (["translation"], ["translation", "beam"]):
                status, got = request(server, "POST", "/api/explore",
                                      {"sentence": sentence, "beam": beam, "parts": parts})
                assert status == 200
                tr = got["results"][0]["translation"]
                key = "greedy" if beam == 1 else "beam"
                assert tr[key]["text"] == want["translation"]
                assert tr["source_tokens"] == want["source_tokens"]
                assert tr[key]["attention"] == want["attention"]


def test_api_explore_gives_every_view_for_both_models(server):
    status, got = request(server, "POST", "/api/explore", {"sentence": "i am home .",
                                                           "beam": 3})
    assert status == 200
    att, s2s = got["results"]
    assert att["translation"]["greedy"]["attention"] is not None
    assert s2s["translation"]["greedy"]["attention"] is None
    for r in (att, s2s):
        g = r["gradients"]
        assert len(g["source"]) == len(g["target_tokens"])
        assert len(g["source"][0]) == len(g["source_tokens"])
        assert r["beam_tree"]["text"] == r["translation"]["beam"]["text"]
    status, models = request(server, "GET", "/api/models")
    assert status == 200 and [m["model"]["model"] for m in models["models"]] == [
        "attention", "seq2seq"]
    assert models["models"][1]["training"]["epochs"] == 3


# ------------------------------------------------------------------ safe to leave running


BAD = [
    ({"sentence": ""}, "empty"),
    ({"sentence": "   "}, "empty"),
    ({"sentence": "a" * 10_000}, "characters"),
    ({"sentence": "zebra xylophone quux"}, "knows none"),
    ({"sentence": "i am", "beam": 0}, "beam width"),
    ({"sentence": "i am", "beam": 10 ** 6}, "beam width"),
    ({"sentence": "i am", "beam": "4"}, "beam width"),
    ({"sentence": "i am", "beam": True}, "beam width"),
    ({"sentence": "i am", "length_penalty": -1}, "length penalty"),
    ({"sentence": 5}, "text"),
    ({"sentence": "i am", "parts": ["everything"]}, "parts"),
    ({"sentence": "i am", "surprise": 1}, "unknown field"),
    ([1, 2], "JSON object"),
]


@pytest.mark.parametrize("body,says", BAD, ids=[s for _, s in BAD])
def test_bad_requests_get_a_400_with_a_message(server, body, says):
    status, got = request(server, "POST", "/api/explore", body)
    assert status == 400
    assert says in got["error"]
    assert "Traceback" not in got["error"]


@pytest.mark.parametrize("body,status,says", [
    (b"\xff\xfe{", 400, "UTF-8"),
    (b"{not json", 400, "not valid JSON"),
    (b'{"sentence": "i", "length_penalty": NaN}', 400, "length penalty"),
    (b"x" * (MAX_BODY + 1), 413, "bytes"),
])
def test_bad_bodies(server, body, status, says):
    got_status, got = request(server, "POST", "/api/explore", body)
    assert got_status == status and says in got["error"]


@pytest.mark.parametrize("path", ["/static/../data.py", "/static/%2e%2e/data.py",
                                  "/../../etc/passwd", "/static//etc/passwd",
                                  "/static/__init__.py", "/static/", "/data.py",
                                  "/static/index.html/../../server.py"])
def test_no_path_outside_the_static_files(server, path):
    status, body = request(server, "GET", path, raw=True)
    assert status == 404
    assert b"import" not in body and b"root:" not in body


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_a_405(server, method):
    status, got = request(server, method, "/api/explore", b"{}")
    assert status == 405 and "GET and POST" in got["error"]


def test_the_page_and_its_files_are_served(server):
    for path, kind in [("/", b"<!DOCTYPE html>"), ("/static/app.js", b"use strict"),
                       ("/static/style.css", b"body")]:
        status, body = request(server, "GET", path, raw=True)
        assert status == 200 and kind in body
        assert b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")


def test_a_burst_of_concurrent_requests_leaves_the_server_answering(server):
    good = {"sentence": "we see it", "beam": 4}
    _, before = request(server, "POST", "/api/explore", good)
    bodies = [good, {"sentence": ""}, b"{oops", {"sentence": "x", "beam": 10 ** 6},
              b"\xff" * 100, {"sentence": "i am home .", "beam": 16}] * 4

    def one(body):
        return request(server, "POST", "/api/explore", body)[0]

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(one, bodies))
    assert statuses == [200, 400, 400, 400, 400, 200] * 4
    status, after = request(server, "POST", "/api/explore", good)
    assert status == 200 and after == before


def test_a_client_that_never_finishes_its_body_does_not_block_the_server(server):
    import socket

    sock = socket.create_connection(server.server_address[:2], timeout=30)
    try:
        sock.sendall(b"POST /api/explore HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{")
        status, _ = request(server, "GET", "/api/models")
        assert status == 200
        # served while the slow client still waits its turn: it is answered too
        sock.sendall(b"oops")
        answer = b""
        while chunk := sock.recv(4096):  # the headers and the body may come apart
            answer += chunk
        assert answer.startswith(b"HTTP/1.0 400") and b"not valid JSON" in answer
    finally:
        sock.close()


def _closed_by_server(sock) -> bool:
    """Whether the server has closed ``sock`` (its reading side says so at once)."""
    import select

    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(4096) == b""
    except OSError:
        return True


def test_slow_clients_are_cut_off_by_a_deadline_and_do_not_block_the_server(explorers):
    """20 clients trickling their headers a byte at a time: a normal request is answered
    meanwhile, each slow one is cut off once its whole request has taken the server's
    request_timeout (not after each read: bytes keep coming), and the server answers
    afterwards."""
    import socket
    import time

    srv = make_server(explorers, "127.0.0.1", 0, request_timeout=1.5)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    slow = []
    try:
        for _ in range(20):
            sock = socket.create_connection(srv.server_address[:2], timeout=30)
            sock.sendall(b"GET /api/models HTTP/1.1\r\n")
            slow.append(sock)
        t0 = time.monotonic()
        status, _ = request(srv, "GET", "/api/models")
        assert status == 200
        assert time.monotonic() - t0 < 5
        cut = set()
        stop = time.monotonic() + 10
        while len(cut) < len(slow) and time.monotonic() < stop:
            for i, sock in enumerate(slow):  # one byte each, every 0.1 s
                if i in cut:
                    continue
                try:
                    sock.send(b"X")
                except OSError:
                    cut.add(i)
                    continue
                if _closed_by_server(sock):
                    cut.add(i)
            time.sleep(0.1)
        assert len(cut) == len(slow), f"{len(slow) - len(cut)} slow clients still held"
        status, _ = request(srv, "POST", "/api/explore", {"sentence": "i am home .",
                                                           "parts": ["translation"]})
        assert status == 200
    finally:
        for sock in slow:
            sock.close()
        srv.shutdown()
        srv.server_close()


def test_connections_over_the_cap_get_a_quick_503_and_the_server_goes_on(explorers):
    """With max_connections held by clients that send nothing, one more connection gets
    a 503 and is closed; once they go, requests are served again."""
    import socket
    import time

    srv = make_server(explorers, "127.0.0.1", 0, max_connections=4)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    held = [socket.create_connection(srv.server_address[:2], timeout=30) for _ in range(4)]
    try:
        extra = socket.create_connection(srv.server_address[:2], timeout=30)
        try:
            extra.sendall(b"GET /api/models HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := extra.recv(4096):
                answer += chunk
        finally:
            extra.close()
        assert answer.startswith(b"HTTP/1.0 503") and b"busy" in answer
    finally:
        for sock in held:
            sock.close()
    try:
        stop = time.monotonic() + 30
        status = None
        while status != 200 and time.monotonic() < stop:
            status, _ = request(srv, "GET", "/api/models")
            time.sleep(0.05)
        assert status == 200
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_server_listens_on_ipv6_loopback(explorers):
    """``--host ::1`` serves (an IPv6 address gets an IPv6 socket)."""
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    srv = make_server(explorers, "::1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection("::1", srv.server_address[1], timeout=60)
        conn.request("GET", "/api/models")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("LOCALHOST", True), ("0.0.0.0", False), ("::", False),
    ("192.168.1.20", False), ("10.0.0.5", False), ("explorer.example.org", False),
])
def test_loopback_hosts_and_the_warning_for_others(attention_ckpt, monkeypatch, capsys,
                                                   host, loopback):
    """Whether a --host is loopback decides the warning ``explore`` prints on starting;
    the server is a stand-in here (nothing listens beyond loopback in the tests)."""
    from minis2s.explore import server as server_module
    from minis2s.explore.command import exposure_warning, is_loopback

    assert is_loopback(host) is loopback
    assert (exposure_warning(host, 8000) is None) is loopback

    class Stub:
        server_address = (host.strip("[]"), 8765)

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    monkeypatch.setattr(server_module, "make_server", lambda *a, **k: Stub())
    capsys.readouterr()
    assert main(["explore", "--model", str(attention_ckpt), "--host", host,
                 "--port", "8765"]) == 0
    out, err = capsys.readouterr()
    assert ":8765/" in out
    warned = ("anyone who can reach port 8765 can use the explorer" in err
              and f"listening on {host}" in err)
    assert warned is not loopback
    assert "Traceback" not in err


# ------------------------------------------------------------------ static export and CLI


def test_static_export_is_self_contained(explorers, tmp_path):
    html = static_page(explorers, ["i am home .", "i am </script><b>home"], beam=3)
    assert "/static/" not in html and "src=\"http" not in html and "href=\"http" not in html
    assert html.count("<script") == 2  # the data and the code, both inline
    start_tag = '<script id="explore-data" type="application/json">'
    data = json.loads(html.split(start_tag)[1].split("</script>")[0])
    assert [d["results"][0]["sentence"] for d in data["sentences"]] == [
        "i am home .", "i am </script><b>home"]
    assert len(data["models"]) == 2


def test_cli_static_and_refusals(attention_ckpt, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["explore", "--model", str(attention_ckpt), "--static", str(out),
                 "i am home ."]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert main(["explore", "--model", str(attention_ckpt), "--static", str(out), ""]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["explore", "--model", str(attention_ckpt), "--static", str(out),
                 "--beam", "0", "i"]) == 2
    assert capsys.readouterr().err == "minis2s: error: --beam must be a whole number >= 1, got 0\n"
    assert main(["explore", "--model", str(attention_ckpt), "--static", str(out)]) == 2
    assert "SENTENCE" in capsys.readouterr().err


def test_connectivity_refuses_a_deep_output_in_one_line(explorers):
    """Connectivity reads the decoder's outputs through decoder.dense alone; a deep output
    is refused by name rather than shown wrong."""
    import dataclasses

    from minis2s.checkpoint import Checkpoint
    from minis2s.explore.data import ExploreError
    from minis2s.model import init_params

    base = explorers[0].ck
    cfg = dataclasses.replace(base.config, output_layer="deep")
    params = init_params(cfg, get_backend("numpy", "float32"), np.random.default_rng(3))
    ex = Explorer(Checkpoint({k: np.asarray(v) for k, v in params.items()}, cfg, base.data,
                             base.src_vocab, base.tgt_vocab), "deep")
    with pytest.raises(ExploreError, match="--output-layer deep"):
        connectivity(ex, "we see he is calm .", ["il"])
