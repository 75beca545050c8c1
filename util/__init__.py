"""The DeepSpeech training library (TensorFlow).

Config, audio, features, feeding, model, CTC, training, checkpoints, evaluation and
export. ``util.importing`` holds the corpus import tooling, which needs no TensorFlow.
See doc/ARCHITECTURE.rst.
"""
