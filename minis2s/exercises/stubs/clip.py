"""Exercise clip: gradient clipping by global norm.

After every backward pass the seed calls grad_clipping(net, 1): the norm of all the
parameters' gradients taken together,

    norm = sqrt(Σ over every array g, Σ over its entries, g²),

and, if it exceeds max_norm, every gradient is multiplied by the one factor
max_norm / norm. The direction of the whole gradient is kept and its length capped; a
gradient whose norm is at most max_norm is left as it is. (minis2s.optim.clip_grad_norm_
does the same on one flat buffer.)

Write clip_grad_norm(grads, max_norm). grads maps names to NumPy arrays of any shapes.
Change the arrays themselves, in place: the caller holds them (in the project they are
views of one buffer), so putting new arrays into the dict is not enough. Return the
global norm before clipping, a float.

Check it: minis2s exercise check clip (in this folder), or python clip.py.
"""

import math


def clip_grad_norm(grads, max_norm):
    """Scale ``grads`` in place to a global norm of at most ``max_norm``; return the norm
    before clipping."""
    raise NotImplementedError  # write it here


if __name__ == "__main__":  # grade this file, as `minis2s exercise check clip` does
    from minis2s.exercises import check

    raise SystemExit(0 if check("clip", clip_grad_norm).passed else 1)
