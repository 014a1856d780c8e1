"""Translation with a trained model:

* :mod:`.greedy` — greedy decoding, many sentences at once;
* :mod:`.beam` — beam search, batched over sentences and beams;
* :mod:`.translate` — sentences in, texts (and attention weights) out;
* :mod:`.heatmap` — attention weights drawn as d2l's ``show_heatmaps`` draws them.
"""

from .beam import Hypothesis, beam_search
from .greedy import Decoded, greedy_decode
from .translate import Translation, encode_sentences, predict_seq2seq, translate, translations

__all__ = [
    "Decoded",
    "Hypothesis",
    "Translation",
    "beam_search",
    "encode_sentences",
    "greedy_decode",
    "predict_seq2seq",
    "translate",
    "translations",
]
