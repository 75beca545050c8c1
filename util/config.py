"""Frozen configuration objects, built once from flags and passed inward.

Each section is a frozen dataclass whose field names are the flag names, so a grep finds
both. Derived values are properties, never extra fields. ``Config.from_flags`` resolves
defaults and validates; nothing mutates a Config afterwards. ``to_json``/``from_json``
carry the whole config into checkpoint and export directories, where loading code
rebuilds the model from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from util.augmentations import needs_audio, parse_augmentations

CONFIG_FORMAT_VERSION = 1
DROPOUT_LAYERS = (1, 2, 3, 5)  # layers followed by dropout (and --layer_norm)
# DeepSpeech's default locations (XDG data dir), used when the flags are left empty.
DEFAULT_DATA_DIR = os.path.join("~", ".local", "share", "deepspeech")


FEATURE_TYPES = ("mfcc", "spectrogram", "fbank")
FEATURE_NORMALIZATIONS = ("none", "utterance")
MODELS = ("deepspeech", "deepspeech2")
RNN_TYPES = ("gru", "lstm", "rnn")
# Defaults that depend on the feature type (doc/TRAINING.rst "Choosing features"):
# mfcc: DeepSpeech 0.9 (32 ms / 20 ms, TF's 40 mel channels); spectrogram: the
# DeepSpeech2 reference (20 ms / 10 ms); fbank: the deep_speech_1 recipe (20 ms / 10 ms,
# 80 log mel energies computed with python_speech_features).
FEATURE_TYPE_DEFAULTS: Mapping[str, Mapping[str, int]] = {
    "mfcc": {"feature_win_len": 32, "feature_win_step": 20, "n_filterbank": 40},
    "spectrogram": {"feature_win_len": 20, "feature_win_step": 10, "n_filterbank": 40},
    "fbank": {"feature_win_len": 20, "feature_win_step": 10, "n_filterbank": 80},
}
# Per model: the features it is trained on unless --feature_type/--feature_normalization
# say otherwise (DeepSpeech 0.9's raw MFCCs; the DeepSpeech2 reference's normalised
# spectrogram).
MODEL_FEATURE_DEFAULTS: Mapping[str, Tuple[str, str]] = {
    "deepspeech": ("mfcc", "none"),
    "deepspeech2": ("spectrogram", "utterance"),
}


@dataclass(frozen=True)
class FeatureConfig:
    """The front end (util/features.py). Defaults: DeepSpeech's 26 MFCCs, 32 ms Hann
    window every 20 ms, 16 kHz. ``of_type`` gives another type's defaults."""

    audio_sample_rate: int = 16000  # Hz
    feature_win_len: int = 32  # ms
    feature_win_step: int = 20  # ms
    n_mfcc: int = 26  # cepstral coefficients per frame (DeepSpeech's n_input)
    n_filterbank: int = 40  # mel channels: TF's Mfcc default (mfcc), 80 (fbank)
    lower_frequency_limit: float = 20.0  # Hz, TF's Mfcc default (mfcc only)
    feature_type: str = "mfcc"  # mfcc | spectrogram | fbank
    feature_normalization: str = "none"  # none | utterance (per-bin mean/var)
    preemphasis: float = 0.97  # fbank only: y[n] = x[n] - 0.97 x[n-1]

    def __post_init__(self) -> None:
        if self.audio_sample_rate <= 0:
            raise ValueError("--audio_sample_rate must be positive")
        if not 0 < self.feature_win_step <= self.feature_win_len:
            raise ValueError("--feature_win_step must be in (0, --feature_win_len]")
        if self.win_len_samples < 2:
            raise ValueError("--feature_win_len is shorter than two samples")
        if self.feature_type not in FEATURE_TYPES:
            raise ValueError(
                f"--feature_type must be one of {', '.join(FEATURE_TYPES)}"
            )
        if self.feature_normalization not in FEATURE_NORMALIZATIONS:
            raise ValueError(
                "--feature_normalization must be one of "
                + ", ".join(FEATURE_NORMALIZATIONS)
            )

    @classmethod
    def of_type(cls, feature_type: str, **overrides: Any) -> "FeatureConfig":
        """The config of ``feature_type`` with its defaults, then ``overrides``."""
        if feature_type not in FEATURE_TYPE_DEFAULTS:
            raise ValueError(
                f"--feature_type must be one of {', '.join(FEATURE_TYPES)}"
            )
        values: Dict[str, Any] = dict(FEATURE_TYPE_DEFAULTS[feature_type])
        values.update(overrides)
        return cls(feature_type=feature_type, **values)

    @property
    def win_len_samples(self) -> int:
        return self.audio_sample_rate * self.feature_win_len // 1000

    @property
    def win_step_samples(self) -> int:
        return self.audio_sample_rate * self.feature_win_step // 1000

    @property
    def upper_frequency_limit(self) -> float:
        """Hz; DeepSpeech passes the Nyquist frequency to TF's Mfcc op."""
        return self.audio_sample_rate / 2

    @property
    def n_input(self) -> int:
        """Values per feature frame: MFCCs, spectrogram bins or mel energies."""
        if self.feature_type == "spectrogram":
            return self.win_len_samples // 2 + 1  # 161 at 16 kHz / 20 ms
        if self.feature_type == "fbank":
            return self.n_filterbank
        return self.n_mfcc

    @property
    def fft_len(self) -> int:
        """FFT points: the window (spectrogram: 320 -> 161 bins at 16 kHz / 20 ms), or
        the next power of two (mfcc: TF's AudioSpectrogram; fbank: 512 at 16 kHz, as
        python_speech_features' default NFFT)."""
        if self.feature_type == "spectrogram":
            return self.win_len_samples
        return 1 << (self.win_len_samples - 1).bit_length()

    @property
    def history_samples(self) -> int:
        """Samples before a frame that its features depend on (fbank's pre-emphasis
        reads one); a streaming client keeps them when it cuts audio into chunks."""
        return 1 if self.feature_type == "fbank" and self.preemphasis else 0

    @property
    def streamable(self) -> bool:
        """Frames depend on their own window only (no per-utterance statistics)."""
        return self.feature_normalization == "none"

    def n_frames(self, n_samples: int) -> int:
        """Feature frames of ``n_samples``: whole windows, as TF's AudioSpectrogram."""
        if n_samples < self.win_len_samples:
            return 0
        return 1 + (n_samples - self.win_len_samples) // self.win_step_samples


# The DeepSpeech2 reference's convolutions over (time, frequency): kernel, stride and
# symmetric zero padding per axis (tensorflow/models research/deep_speech).
DS2_CONV_LAYERS: Tuple[
    Tuple[Tuple[int, int], Tuple[int, int], Tuple[int, int]], ...
] = (
    ((41, 11), (2, 2), (20, 5)),
    ((21, 11), (2, 1), (10, 5)),
)
DS2_CONV_FILTERS = 32


def conv_output_len(n: Any, kernel: int, stride: int, padding: int) -> Any:
    """Outputs of a 'valid' convolution over ``n`` steps padded ``padding`` each side.

    Works on ints and on integer tensors (only ``+`` and ``//``), so the sample
    validation (no TensorFlow) and the CTC loss use this one formula.
    """
    return (n + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class ModelConfig:
    """The acoustic model's geometry (doc/TRAINING.rst "Choosing a geometry").

    ``deepspeech``: 3 clipped-ReLU dense, (Bi)LSTM, dense, chars + blank (``n_hidden``,
    ``n_context``, ``dropout_rate``, ``relu_clip``). ``deepspeech2``: the
    tensorflow/models DeepSpeech2 (``DS2_CONV_LAYERS``, then ``rnn_layers`` x
    ``rnn_hidden_size`` ``rnn_type`` cells, batch norm; ``batch_norm_decay``).
    ``bidirectional`` applies to both.
    """

    n_hidden: int = 2048
    n_context: int = 9  # frames each side; layer 1 sees 2 * n_context + 1 frames
    bidirectional: bool = True
    dropout_rate: float = 0.05  # on layers 1, 2, 3 and 5, as DeepSpeech
    relu_clip: float = 20.0
    # DeepSpeech 0.9's per-layer rates, under its flag names (numbered, unlike our
    # other fields, so a grep finds flag and field): layers 2, 3 and 5 (rate6 is
    # layer 5's in 0.9); None = dropout_rate. Its rate4/rate5 never had an effect.
    dropout_rate2: Optional[float] = None
    dropout_rate3: Optional[float] = None
    dropout_rate6: Optional[float] = None
    layer_norm: bool = False  # layer normalisation after layers 1, 2, 3 and 5
    model: str = "deepspeech"  # deepspeech | deepspeech2
    rnn_type: str = "gru"  # deepspeech2: gru | lstm | rnn
    rnn_layers: int = 5  # deepspeech2: recurrent layers
    rnn_hidden_size: int = 800  # deepspeech2: cells per direction
    batch_norm_decay: float = 0.997  # deepspeech2: moving-average decay (reference)

    def __post_init__(self) -> None:
        if self.n_hidden <= 0:
            raise ValueError("--n_hidden must be positive")
        if self.n_context < 0:
            raise ValueError("--n_context must be >= 0")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError("--dropout_rate must be in [0, 1)")
        if self.relu_clip <= 0:
            raise ValueError("--relu_clip must be positive")
        for name in ("dropout_rate2", "dropout_rate3", "dropout_rate6"):
            rate = getattr(self, name)
            if rate is not None and not 0.0 <= rate < 1.0:
                raise ValueError(
                    f"--{name} must be in [0, 1) (negative: --dropout_rate)"
                )
        if self.model not in MODELS:
            raise ValueError(f"--model must be one of {', '.join(MODELS)}")
        if self.rnn_type not in RNN_TYPES:
            raise ValueError(f"--rnn_type must be one of {', '.join(RNN_TYPES)}")
        if self.rnn_layers < 1 or self.rnn_hidden_size < 1:
            raise ValueError("--rnn_layers and --rnn_hidden_size must be >= 1")
        if not 0.0 <= self.batch_norm_decay < 1.0:
            raise ValueError("--batch_norm_decay must be in [0, 1)")

    @property
    def window_frames(self) -> int:
        return 2 * self.n_context + 1

    def dropout_for(self, layer: int) -> float:
        """Dropout rate after ``layer`` (1, 2, 3 or 5; DeepSpeech 0.9's rules)."""
        if layer == DROPOUT_LAYERS[0]:
            return self.dropout_rate
        rate = {2: self.dropout_rate2, 3: self.dropout_rate3, 5: self.dropout_rate6}[
            layer
        ]
        return self.dropout_rate if rate is None else rate

    @property
    def time_stride(self) -> int:
        """Feature frames per output frame (DeepSpeech2: 2 x 2 = 4)."""
        if self.model != "deepspeech2":
            return 1
        stride = 1
        for _, (time_stride, _), _ in DS2_CONV_LAYERS:
            stride *= time_stride
        return stride

    @property
    def lookahead_frames(self) -> int:
        """Feature frames after an output frame's first frame that it depends on: the
        look-ahead a stream waits for. DeepSpeech: ``n_context``. DeepSpeech2: each
        convolution's time padding times the stride before it, 20 + 2 x 10 = 40."""
        if self.model != "deepspeech2":
            return self.n_context
        frames, stride = 0, 1
        for _, (time_stride, _), (padding, _) in DS2_CONV_LAYERS:
            frames += padding * stride
            stride *= time_stride
        return frames

    def output_frames(self, n_frames: Any) -> Any:
        """Logit frames of an utterance of ``n_frames`` feature frames (int or tensor).

        DeepSpeech: one per frame ('SAME' context window). DeepSpeech2: each convolution
        maps n -> (n + 2 p - k) // s + 1 over time, i.e. ceil(n / 2) twice, the exact
        form of the reference's proportional ``compute_length_after_conv``.
        """
        if self.model != "deepspeech2":
            return n_frames
        for (kernel, _), (stride, _), (padding, _) in DS2_CONV_LAYERS:
            n_frames = conv_output_len(n_frames, kernel, stride, padding)
        return n_frames


@dataclass(frozen=True)
class DataConfig:
    train_files: Tuple[str, ...] = ()
    dev_files: Tuple[str, ...] = ()
    test_files: Tuple[str, ...] = ()
    train_batch_size: int = 1
    dev_batch_size: int = 1
    test_batch_size: int = 1
    limit_train: int = 0  # samples, 0 = all
    limit_dev: int = 0
    limit_test: int = 0
    reverse_train: bool = False
    reverse_dev: bool = False
    reverse_test: bool = False
    feature_cache: Optional[str] = None  # directory
    skip_bad_samples: bool = True
    alphabet_config_path: str = "data/alphabet.txt"
    # DeepSpeech 0.9's bytes output mode: the model outputs UTF-8 bytes (255 labels +
    # blank) and alphabet_config_path is not read (ctcdecode.output_alphabet).
    bytes_output_mode: bool = False
    # -- DeepSpeech 0.9 compatibility (issue 12) --
    metrics_files: Tuple[str, ...] = ()  # loss reported after each dev pass only
    read_buffer: int = 1 << 20  # bytes, read buffer of .sdb sample databases
    cache_for_epochs: int = 0  # rebuild the feature cache every N epochs, 0 = never
    # --augment specs, training samples only (util/augmentations.py, issue 14)
    augment: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("train_batch_size", "dev_batch_size", "test_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1")
        _check_augment(self.augment, self.feature_cache)
        if self.read_buffer < 1:
            raise ValueError("--read_buffer must be at least 1 byte")
        if self.cache_for_epochs < 0:
            raise ValueError("--cache_for_epochs must be >= 0")


def _check_augment(specs: Tuple[str, ...], feature_cache: Optional[str]) -> None:
    """Parse the --augment specs (ValueError naming the bad one); refuse kinds that the
    feature cache would freeze: it stores the clean features of the first epoch."""
    frozen = [s for s in specs if needs_audio(parse_augmentations([s]))]
    if feature_cache and frozen:
        raise ValueError(
            f"--augment {frozen[0]!r} changes the audio before the features, but "
            f"--feature_cache {feature_cache!r} stores each sample's features once, so "
            "that augmentation would be frozen (--cache_for_epochs would only refresh "
            "clean features): drop --feature_cache when augmenting, or use only "
            "features-domain augmentations (add, multiply, and time_mask, "
            "frequency_mask, dropout with domain=features), which apply after the cache"
        )


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 75
    learning_rate: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    random_seed: int = 4568
    early_stop: bool = False
    es_epochs: int = 25
    es_min_delta: float = 0.05
    reduce_lr_on_plateau: bool = False
    plateau_epochs: int = 10
    plateau_reduction: float = 0.1
    lr_warmup_steps: int = 0  # linear warm-up over this many updates
    lr_decay: str = "none"  # none | cosine | exponential, over the run's epochs
    lr_decay_floor: float = 0.0  # final rate / learning_rate
    shuffle_batches: bool = True
    jit: bool = False  # XLA-compile the train step
    show_progressbar: bool = True
    summary_dir: Optional[str] = None
    # -- DeepSpeech 0.9 compatibility (issue 12) --
    # ``epochs`` is what this invocation trains (0.9); ``max_epochs`` caps the total
    # the checkpoint may hold, earlier runs included (None = no cap).
    max_epochs: Optional[int] = None
    force_initialize_learning_rate: bool = False  # ignore a plateau-reduced rate

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ValueError("--learning_rate must be positive")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ValueError("--max_epochs must be >= 1 (or 0 for no limit)")
        if self.lr_decay not in ("none", "cosine", "exponential"):
            raise ValueError("--lr_decay must be one of none, cosine, exponential")
        if self.lr_decay == "exponential" and self.lr_decay_floor <= 0:
            raise ValueError(
                "--lr_decay exponential needs --lr_decay_floor > 0 (the final rate "
                "as a fraction of --learning_rate, e.g. 0.1)"
            )
        if self.scheduled and self.reduce_lr_on_plateau:
            raise ValueError(
                "--reduce_lr_on_plateau cannot be combined with --lr_warmup_steps or "
                "--lr_decay (both set the learning rate): choose one"
            )

    @property
    def scheduled(self) -> bool:
        """Whether the learning rate follows --lr_warmup_steps/--lr_decay."""
        return self.lr_warmup_steps > 0 or self.lr_decay != "none"

    def last_epoch(self, first: int) -> int:
        """Epoch index to stop before, for a run that starts at epoch ``first``."""
        last = first + self.epochs
        return last if self.max_epochs is None else min(last, self.max_epochs)


@dataclass(frozen=True)
class CheckpointConfig:
    load_checkpoint_dir: str = ""
    save_checkpoint_dir: str = ""
    load_train: str = "auto"  # auto | best | last | init
    load_evaluate: str = "auto"  # auto | best | last
    checkpoint_secs: int = 600  # s
    max_to_keep: int = 5
    drop_source_layers: int = 0  # transfer learning (util/transfer.py)
    freeze_source_layers: int = 0

    def __post_init__(self) -> None:
        for name in ("drop_source_layers", "freeze_source_layers"):
            if not 0 <= getattr(self, name) <= 5:
                raise ValueError(
                    f"--{name} must be between 0 and 5 (layer_1 is always loaded)"
                )
        if 0 < self.freeze_source_layers < self.drop_source_layers:
            raise ValueError(
                "--freeze_source_layers must be at least --drop_source_layers: a "
                "re-initialised layer must train"
            )
        if self.load_train not in ("auto", "best", "last", "init"):
            raise ValueError("--load_train must be one of auto, best, last, init")
        if self.load_evaluate not in ("auto", "best", "last"):
            raise ValueError("--load_evaluate must be one of auto, best, last")


@dataclass(frozen=True)
class EvalConfig:
    one_shot_infer: Optional[str] = None
    test_output_file: Optional[str] = None
    report_count: int = 5


@dataclass(frozen=True)
class ExportConfig:
    """SavedModel / TFLite export and the metadata embedded in it (doc/EXPORT.rst)."""

    export_dir: Optional[str] = None
    export_tflite: bool = False
    export_file_name: str = "output_graph"
    remove_export: bool = False  # empty export_dir before writing
    export_quantize: bool = False  # TFLite: int8 weights (dynamic-range quantisation)
    export_beam_width: int = 500  # the client's default beam width (DeepSpeech: 500)
    export_language: str = ""  # e.g. "en-US"
    export_author_id: str = "author"
    export_model_name: str = "model"
    export_model_version: str = "0.0.1"
    export_license: str = "MPL-2.0"
    export_description: str = ""
    # -- DeepSpeech 0.9 compatibility (issue 12) --
    export_contact_info: str = ""
    export_min_ds_version: str = ""
    export_max_ds_version: str = ""
    export_zip: bool = False  # pack export_dir (TFLite + scorer) as <export_dir>.zip
    n_steps: int = 16  # output frames per call of the streaming signature
    export_batch_size: int = 1  # 0.9's graph batch; the export takes one utterance

    def __post_init__(self) -> None:
        if self.export_beam_width < 1:
            raise ValueError("--export_beam_width must be >= 1")
        if self.n_steps < 1:
            raise ValueError("--n_steps must be >= 1")
        if self.export_zip and not self.export_tflite:
            raise ValueError("--export_zip packs a TFLite model: set --export_tflite")


@dataclass(frozen=True)
class DecoderConfig:
    """CTC decoding in the test pass and --one_shot_infer (see doc/DECODER.rst).

    Greedy without ``scorer_path``; with it, beam search scored by the package's KenLM
    model. ``lm_alpha``/``lm_beta`` left unset take the scorer's stored defaults, as
    DeepSpeech's clients did; they are resolved when the scorer is loaded.
    """

    scorer_path: Optional[str] = None  # .scorer package (generate_scorer_package.py)
    lm_alpha: Optional[float] = None  # weight of ln P_lm; None = scorer's default
    lm_beta: Optional[float] = None  # nats added per word; None = scorer's default
    beam_width: int = 1024  # hypotheses kept per frame
    cutoff_prob: float = 1.0  # per-frame cumulative probability kept (1 = no cut)
    cutoff_top_n: int = 300  # labels tried per frame
    decoder_processes: Optional[int] = None  # beam search processes; None = CPU cores

    def __post_init__(self) -> None:
        if self.beam_width < 1 or self.cutoff_top_n < 1:
            raise ValueError("--beam_width and --cutoff_top_n must be >= 1")
        if not 0.0 < self.cutoff_prob <= 1.0:
            raise ValueError("--cutoff_prob must be in (0, 1]")
        if self.decoder_processes is not None and self.decoder_processes < 1:
            raise ValueError("--decoder_processes must be >= 1")


@dataclass(frozen=True)
class ClusterConfig:
    """Multi-worker layout (doc/DISTRIBUTED.rst); empty ``worker_hosts``: one process.

    DeepSpeech's ``--ps_hosts``/``--job_name`` are kept so its scripts parse, but only
    the all-reduce layout runs: every process is a worker and task 0 is the chief.
    """

    worker_hosts: Tuple[str, ...] = ()  # host:port of every worker, in task order
    task_index: int = 0  # this process's position in worker_hosts
    ps_hosts: Tuple[str, ...] = ()  # DeepSpeech's parameter servers: rejected
    job_name: str = "worker"  # DeepSpeech's default "localhost" means the same
    heartbeat_timeout_s: int = 30  # s of silence before a worker counts as dead
    collective_timeout_s: int = 600  # s an all-reduce may wait for a peer, 0 = forever
    cluster_start_timeout_s: int = 600  # s to wait at start for every worker to connect
    num_gpus: Optional[int] = None  # local replicas: N GPUs, -1 all, 0 CPU; None: auto

    def __post_init__(self) -> None:
        if self.ps_hosts or self.job_name == "ps":
            raise ValueError(
                "--ps_hosts/--job_name ps: parameter-server training is not supported; "
                "drop --ps_hosts and start every machine as a worker with the same "
                "--worker_hosts and its own --task_index (see doc/DISTRIBUTED.rst)"
            )
        if self.job_name not in ("worker", "localhost"):
            raise ValueError("--job_name must be 'worker' (DeepSpeech: 'localhost')")
        for host in self.worker_hosts:
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit():
                raise ValueError(f"--worker_hosts: {host!r} is not host:port")
        if self.worker_hosts and not 0 <= self.task_index < len(self.worker_hosts):
            raise ValueError(
                f"--task_index {self.task_index} is not a position in --worker_hosts "
                f"(0..{len(self.worker_hosts) - 1})"
            )
        if self.num_gpus is not None and self.num_gpus < -1:
            raise ValueError("--num_gpus must be -1 (all), 0 (CPU) or a GPU count")
        for name in (
            "heartbeat_timeout_s",
            "collective_timeout_s",
            "cluster_start_timeout_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0")


@dataclass(frozen=True)
class DeviceConfig:
    """GPU, precision and threads (doc/GPU.rst). Not geometry: a checkpoint trained
    with one setting resumes, evaluates and exports with any other.

    ``train_cudnn`` None and ``mixed_precision_dtype`` "auto" are decided at start-up
    from the visible devices (util/devices.py) and recorded resolved in config.json.
    """

    train_cudnn: Optional[bool] = None  # None: on when a GPU is visible
    load_cudnn: bool = False  # DeepSpeech 0.9; nothing to convert here
    automatic_mixed_precision: bool = False
    mixed_precision_dtype: str = "auto"  # auto | float16 | bfloat16
    use_allow_growth: bool = False
    log_placement: bool = False  # DeepSpeech 0.9: log each op's device (issue 12)
    inter_op_parallelism_threads: int = 0  # 0: chosen for the CPU (util/cpu_settings)
    intra_op_parallelism_threads: int = 0  # 0: chosen for the CPU (util/cpu_settings)

    def __post_init__(self) -> None:
        if self.mixed_precision_dtype not in ("auto", "float16", "bfloat16"):
            raise ValueError(
                "--mixed_precision_dtype must be auto, float16 or bfloat16"
            )
        for name in ("inter_op_parallelism_threads", "intra_op_parallelism_threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0")

    @property
    def compute_dtype(self) -> str:
        """float32, or the 16-bit type of mixed precision once resolved."""
        if not self.automatic_mixed_precision:
            return "float32"
        if self.mixed_precision_dtype == "auto":
            raise ValueError("mixed_precision_dtype 'auto' is resolved at start-up")
        return self.mixed_precision_dtype


@dataclass(frozen=True)
class Config:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)

    @classmethod
    def from_flags(cls, f: Mapping[str, Any]) -> "Config":
        """Build the config from the parsed flag values (``flag_values_dict()``).

        Raises ValueError naming the flag when a value is invalid.
        """
        ckpt_dir = f["checkpoint_dir"] or _default_dir("checkpoints")
        return cls(
            features=_features_from_flags(f),
            model=_section(ModelConfig, f, **_layer_dropout(f)),
            data=_section(
                DataConfig,
                f,
                train_files=_split_files(f["train_files"]),
                dev_files=_split_files(f["dev_files"]),
                test_files=_split_files(f["test_files"]),
                feature_cache=f["feature_cache"] or None,
                augment=tuple(f.get("augment") or ()),
                metrics_files=_split_files(f["metrics_files"]),
                read_buffer=parse_file_size(f["read_buffer"], "--read_buffer"),
            ),
            train=_section(
                TrainConfig,
                f,
                jit=f["jit"],
                summary_dir=f["summary_dir"] or _default_dir("summaries"),
                max_epochs=f["max_epochs"] or None,
            ),
            checkpoint=_section(
                CheckpointConfig,
                f,
                load_checkpoint_dir=f["load_checkpoint_dir"] or ckpt_dir,
                save_checkpoint_dir=f["save_checkpoint_dir"] or ckpt_dir,
            ),
            eval=_section(
                EvalConfig,
                f,
                one_shot_infer=f["one_shot_infer"] or None,
                test_output_file=f["test_output_file"] or None,
            ),
            export=_section(
                ExportConfig,
                f,
                export_dir=f["export_dir"] or None,
                export_tflite=f["export_tflite"] or f["export_zip"],
            ),
            decoder=_section(DecoderConfig, f, scorer_path=f["scorer_path"] or None),
            cluster=_section(
                ClusterConfig,
                f,
                worker_hosts=_split_files(f["worker_hosts"]),
                ps_hosts=_split_files(f["ps_hosts"]),
            ),
            device=_section(DeviceConfig, f),
        )

    def to_json(self) -> str:
        body = dataclasses.asdict(self)
        body["format_version"] = CONFIG_FORMAT_VERSION
        return json.dumps(body, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        body = json.loads(text)
        version = body.pop("format_version", None)
        if version != CONFIG_FORMAT_VERSION:
            raise ValueError(
                f"config format version {version!r} is not {CONFIG_FORMAT_VERSION}; "
                "the file was written by another version of this project"
            )
        sections = {
            "features": FeatureConfig,
            "model": ModelConfig,
            "data": DataConfig,
            "train": TrainConfig,
            "checkpoint": CheckpointConfig,
            "eval": EvalConfig,
            "export": ExportConfig,
            "decoder": DecoderConfig,
            "cluster": ClusterConfig,
            "device": DeviceConfig,
        }
        return cls(
            **{
                name: _from_dict(sections[name], body.get(name, {}))
                for name in sections
            }
        )


def _features_from_flags(f: Mapping[str, Any]) -> FeatureConfig:
    """The feature section: --feature_type/--feature_normalization default per --model,
    window and mel channels per feature type; flags given explicitly win."""
    model = f.get("model") or "deepspeech"
    if model not in MODEL_FEATURE_DEFAULTS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}")
    default_type, default_norm = MODEL_FEATURE_DEFAULTS[model]
    feature_type = f.get("feature_type") or default_type
    values = {
        fl.name: f[fl.name]
        for fl in dataclasses.fields(FeatureConfig)
        if f.get(fl.name) is not None and fl.name != "feature_type"
    }
    values.setdefault("feature_normalization", default_norm)
    return FeatureConfig.of_type(feature_type, **values)


def _default_dir(kind: str) -> str:
    return os.path.expanduser(os.path.join(DEFAULT_DATA_DIR, kind))


def _split_files(value: str) -> Tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def _section(kind: type, f: Mapping[str, Any], **resolved: Any) -> Any:
    """Dataclass ``kind`` from the flags named like its fields, then ``resolved``."""
    values = {fl.name: f[fl.name] for fl in dataclasses.fields(kind) if fl.name in f}
    values.update(resolved)
    return kind(**values)


def _from_dict(kind: type, values: Mapping[str, Any]) -> Any:
    known = {fl.name for fl in dataclasses.fields(kind)}
    clean = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in values.items()
        if k in known
    }
    return kind(**clean)


# -- DeepSpeech 0.9 flags (issue 12, doc/DEEPSPEECH09.rst) ----------------------------

# Flags that mean nothing here any more: name -> (0.9 default, why). A value other than
# the default logs this one-line warning (ds09_warnings) and changes nothing.
DS09_IGNORED: Dict[str, Tuple[Any, str]] = {
    "dropout_rate4": (
        0.0,
        "DeepSpeech 0.9 applied no dropout to layer 4 (the LSTM) either",
    ),
    "dropout_rate5": (
        0.0,
        "DeepSpeech 0.9 never used it (layer 5 takes --dropout_rate6)",
    ),
    "export_batch_size": (
        1,
        "the exported model transcribes one utterance per call, like 0.9's TFLite "
        "export; the deepspeech client batches files itself",
    ),
    "n_trials": (100, "only lm_optimizer.py uses it"),
    "lm_alpha_max": (5.0, "only lm_optimizer.py uses it"),
    "lm_beta_max": (5.0, "only lm_optimizer.py uses it"),
}

_FILE_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)b?\s*$", re.IGNORECASE)
_FILE_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_file_size(text: str, flag: str) -> int:
    """Bytes of a size like 0.9's ``1MB``, ``512k`` or ``4096`` (1024-based)."""
    match = _FILE_SIZE.match(text)
    if not match:
        raise ValueError(
            f"{flag}: {text!r} is not a size; give a number with an optional KB, MB, "
            "GB or TB suffix, e.g. 1MB"
        )
    return int(match.group(1)) * _FILE_SIZE_UNITS[match.group(2).lower()]


def ds09_warnings(f: Mapping[str, Any]) -> List[str]:
    """One line per 0.9 flag that was set but has no effect here, saying why."""
    return [
        f"--{name}={f[name]} has no effect: {why}"
        for name, (default, why) in DS09_IGNORED.items()
        if name in f and f[name] != default
    ]


def _layer_dropout(f: Mapping[str, Any]) -> Dict[str, Optional[float]]:
    """0.9's --dropout_rate2/3/6, negative (its default) = None: --dropout_rate."""
    return {
        name: None if f.get(name, -1.0) < 0 else float(f[name])
        for name in ("dropout_rate2", "dropout_rate3", "dropout_rate6")
    }
