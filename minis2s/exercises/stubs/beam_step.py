"""Exercise beam_step: one step of beam search.

minis2s's beam search (minis2s/decode/beam.py) keeps, for every sentence of the batch,
its live hypotheses: partial translations, each with its log-probability so far. At
every step the decoder gives each live hypothesis the log-probabilities of every next
token; each (hypothesis, token) pair is an extension, whose log-probability is the
hypothesis's so far plus the token's. Each sentence keeps its K best extensions (all of
them, if it has fewer than K), ranked against each other whichever hypothesis they
extend. A kept extension whose token is <eos> is finished: it leaves the beam (the beam
of that sentence narrows). The others stay live for the next step.

The live hypotheses of all sentences are the B rows of one batch, grouped by sentence:

    logp       (B,)    each row's log-probability so far
    log_probs  (B, V)  the log-probability of each next token, for each row
    sent       (B,)    the sentence of each row (0, 0, 0, 1, 2, 2, ...)
    K                  the beam size
    eos                the token id of <eos>

Write beam_step(logp, log_probs, sent, K, eos). Return (live, finished), two lists of
(row, token, log_prob) triples: the kept extensions, those ending in <eos> in finished
and the others in live; row is the row extended, token the new token, log_prob the
extension's log-probability. Any order will do.

Check it: minis2s exercise check beam_step (in this folder), or python beam_step.py.
The grader compares the result with an exact answer (no finite differences here).
"""


def beam_step(logp, log_probs, sent, K, eos):
    """-> (live, finished), each a list of (row, token, log_prob)."""
    B, V = log_probs.shape
    raise NotImplementedError  # write it here


if __name__ == "__main__":  # grade this file, as `minis2s exercise check beam_step` does
    from minis2s.exercises import check

    raise SystemExit(0 if check("beam_step", beam_step).passed else 1)
