"""Solution: one step of beam search, for every sentence of the batch."""


def beam_step(logp, log_probs, sent, K, eos):
    """logp (B,), log_probs (B, V), sent (B,), beam size K, the id of <eos> ->
    (live, finished), each a list of (row, token, log_prob)."""
    B, V = log_probs.shape
    live, finished = [], []
    for s in sorted(set(sent.tolist())):  # each sentence on its own
        candidates = []
        for row in range(B):
            if sent[row] != s:
                continue
            for token in range(V):
                total = logp[row] + log_probs[row, token]  # log P(prefix) + log P(token)
                candidates.append((total, row, token))
        candidates.sort(reverse=True)  # the best first
        for total, row, token in candidates[:K]:  # the K best (or all, if fewer)
            if token == eos:
                finished.append((row, token, total))  # it ends here: out of the beam
            else:
                live.append((row, token, total))  # it goes on to the next step
    return live, finished
