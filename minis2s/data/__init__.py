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

Beside the corpus, :mod:`.tasks` makes pairs of its own (copy, reverse, add, date) from a
random seed, as :class:`TaskSpec` says, and :func:`load_task_data` gives them in the
corpus's form.
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
from .tasks import (
    DATE_FORMATS,
    TASKS,
    TaskSpec,
    load_task_data,
    make_task,
    task_preset_fields,
)
from .text import CORPUS_TEXT, Pair, preprocess, text_rules, tokenize
from .vocab import BOS, EOS, PAD, RESERVED_TOKENS, UNK, Vocab, build_array

__all__ = [
    "BOS",
    "Batch",
    "CORPUS_TEXT",
    "DATE_FORMATS",
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
    "TASKS",
    "TaskSpec",
    "TranslationData",
    "UNK",
    "Vocab",
    "build_array",
    "cache_dir",
    "download",
    "iterate_batches",
    "load_data",
    "load_task_data",
    "make_batch",
    "make_part",
    "make_task",
    "pack",
    "preprocess",
    "read_pairs",
    "resolve_data_path",
    "split_pairs",
    "task_preset_fields",
    "teacher_forcing_input",
    "text_rules",
    "tokenize",
]
