"""The English-French corpus, from a file on disk to minibatches.

The learning path, one module each:

* :mod:`.text` — d2l's text rules (preprocess, tokenize);
* :mod:`.vocab` — vocabularies, and sentences as padded id arrays;
* :mod:`.corpus` — sentence pairs, their train / validation / test split (a permutation
  from a random seed), and the parts as arrays (:func:`load_data`, as a
  :class:`DataSpec` says);
* :mod:`.batches` — minibatches with the decoder's input and the packing order.

Around it, the plumbing: :mod:`.files` reads a plain file or a zip member safely,
:mod:`.fetch` finds or downloads the corpus, :mod:`.errors` has :class:`DataError`.
"""

from .batches import Batch, Packing, iterate_batches, make_batch, pack, teacher_forcing_input
from .corpus import (
    DataSpec,
    Part,
    Split,
    TranslationData,
    load_data,
    make_part,
    read_pairs,
    split_pairs,
)
from .errors import DataError
from .fetch import DATA_SHA1, DATA_URL, ENV_DATA, cache_dir, download, resolve_data_path
from .text import Pair, preprocess, tokenize
from .vocab import BOS, EOS, PAD, RESERVED_TOKENS, UNK, Vocab, build_array

__all__ = [
    "BOS",
    "Batch",
    "DATA_SHA1",
    "DATA_URL",
    "DataError",
    "DataSpec",
    "ENV_DATA",
    "EOS",
    "PAD",
    "Packing",
    "Pair",
    "Part",
    "RESERVED_TOKENS",
    "Split",
    "TranslationData",
    "UNK",
    "Vocab",
    "build_array",
    "cache_dir",
    "download",
    "iterate_batches",
    "load_data",
    "make_batch",
    "make_part",
    "pack",
    "preprocess",
    "read_pairs",
    "resolve_data_path",
    "split_pairs",
    "teacher_forcing_input",
    "tokenize",
]
