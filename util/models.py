"""Which acoustic model a config names: ``build_model`` and the ``AcousticModel`` type.

Its own module so that util/model.py (DeepSpeech) and util/model_ds2.py (DeepSpeech2,
which reuses util/model.py's dense layer and initializer) stay free of a cycle.
"""

from typing import Union

from util.config import ModelConfig
from util.model import DeepSpeechModel
from util.model_ds2 import DeepSpeech2Model

# Either geometry: both are called as model(features, features_len, training,
# dropout_seed, cudnn) and carry cfg, n_input and n_classes.
AcousticModel = Union[DeepSpeechModel, DeepSpeech2Model]


def build_model(
    cfg: ModelConfig, n_input: int, n_classes: int, seed: int = 0
) -> AcousticModel:
    """The model ``cfg.model`` names: ``DeepSpeechModel`` or ``DeepSpeech2Model``."""
    if cfg.model == "deepspeech2":
        return DeepSpeech2Model(cfg, n_input, n_classes, seed=seed)
    return DeepSpeechModel(cfg, n_input, n_classes, seed=seed)
