"""CTC decoding package shared by the trainer and the inference client (no TensorFlow).

DeepSpeech's ``ds_ctcdecoder`` role: the output alphabet here; the scorer and the
greedy/beam decoders (decoder.py) and the incremental
streaming decoder (streaming.py) live beside it.
"""

from .alphabet import (
    Alphabet,
    AlphabetError,
    UTF8Alphabet,
    load_alphabet,
    output_alphabet,
)
from .decoder import (
    BatchDecoder,
    BeamOptions,
    DecodeResult,
    Scorer,
    ctc_beam_search_decoder,
    ctc_beam_search_decoder_batch,
    ctc_greedy_decoder,
)
from .streaming import StreamingDecoder

__all__ = [
    "Alphabet",
    "AlphabetError",
    "UTF8Alphabet",
    "load_alphabet",
    "output_alphabet",
]
__all__ += [
    "BatchDecoder",
    "BeamOptions",
    "DecodeResult",
    "Scorer",
    "StreamingDecoder",
    "ctc_beam_search_decoder",
    "ctc_beam_search_decoder_batch",
    "ctc_greedy_decoder",
]
