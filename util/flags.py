"""Command-line flags of ``DeepSpeech.py``: DEFINE_* calls and validators only.

This is the only module that declares flags. ``DeepSpeech.py`` parses them once and turns
them into a frozen :class:`util.config.Config`; nothing else reads ``FLAGS``.
Names and defaults follow DeepSpeech 0.9 unless a comment says why they differ.
The ``sphinx-doc:`` markers group the flags into the tables of ``doc/FLAGS.rst``
(rendered from these definitions by ``doc/_ext/flag_table.py``), so the docs cannot
drift from the code.
"""

from absl import flags

F = flags


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Declare every flag in ``flag_values``.

    ``DeepSpeech.py`` calls it once on the global ``FLAGS`` before ``app.run``; tests
    pass a fresh ``flags.FlagValues()`` to get the defaults without touching argv.
    """
    # sphinx-doc: data_flags_start
    F.DEFINE_string(
        "train_files",
        "",
        "comma-separated list of CSV files to train on",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "dev_files",
        "",
        "comma-separated list of CSV files to validate on after each epoch; each set is reported separately",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "test_files",
        "",
        "comma-separated list of CSV files to test on; each set is reported separately",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "train_batch_size",
        1,
        "number of utterances per training batch (per replica)",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "dev_batch_size",
        1,
        "number of utterances per validation batch",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "test_batch_size",
        1,
        "number of utterances per test batch",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "limit_train",
        0,
        "use at most this many training samples (0 = all)",
        lower_bound=0,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "limit_dev",
        0,
        "use at most this many samples of each dev set (0 = all)",
        lower_bound=0,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "limit_test",
        0,
        "use at most this many samples of each test set (0 = all)",
        lower_bound=0,
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "reverse_train",
        False,
        "train on the longest utterances first (instead of the shortest)",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "reverse_dev",
        False,
        "validate longest utterances first",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "reverse_test", False, "test longest utterances first", flag_values=flag_values
    )
    F.DEFINE_string(
        "feature_cache",
        "",
        "directory to cache computed features in; reused while the CSV and the feature settings stay the same (empty = no cache)",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "skip_bad_samples",
        True,
        "skip CSV rows that cannot be used (missing/unreadable/empty audio, empty or out-of-alphabet transcript, transcript too long for the audio) and report them; false makes any such row a hard error before training",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "alphabet_config_path",
        "data/alphabet.txt",
        "path to the alphabet file: one symbol per line, '#' starts a comment, '\\#' is a literal '#'",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "bytes_output_mode",
        False,
        "the model outputs UTF-8 bytes (255 labels + blank) instead of an alphabet's symbols, for any language without an alphabet file (DeepSpeech 0.9); --alphabet_config_path is ignored",
        flag_values=flag_values,
    )
    # sphinx-doc: data_flags_end

    # sphinx-doc: feature_flags_start
    F.DEFINE_integer(
        "audio_sample_rate",
        16000,
        "sample rate (Hz) the model works at; audio at other rates is resampled",
        lower_bound=1000,
        flag_values=flag_values,
    )
    F.DEFINE_enum(
        "feature_type",
        None,
        ["mfcc", "spectrogram", "fbank"],
        "features: mfcc (DeepSpeech 0.9's 26 MFCCs), spectrogram (log power spectrum, Hann window, the DeepSpeech2 reference) or fbank (80 log mel energies, pre-emphasis 0.97, as python_speech_features); default: mfcc for --model deepspeech, spectrogram for deepspeech2",
        flag_values=flag_values,
    )
    F.DEFINE_enum(
        "feature_normalization",
        None,
        ["none", "utterance"],
        "utterance: per-utterance, per-bin mean/variance normalisation (both references; a model using it cannot stream); default: none for --model deepspeech, utterance for deepspeech2",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "feature_win_len",
        None,
        "feature extraction window length in milliseconds; default: 32 for mfcc, 20 for spectrogram and fbank",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "feature_win_step",
        None,
        "feature extraction window step in milliseconds; default: 20 for mfcc, 10 for spectrogram and fbank",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "n_context",
        9,
        "frames of context on each side of the current frame (DeepSpeech: 9, i.e. 19 frames x 26 MFCC = 494 inputs)",
        lower_bound=0,
        flag_values=flag_values,
    )
    # sphinx-doc: feature_flags_end

    # sphinx-doc: model_flags_start
    F.DEFINE_integer(
        "n_hidden",
        2048,
        "width of the hidden layers and of the LSTM cell",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "bidirectional",
        True,
        "bidirectional LSTM as in the Deep Speech paper (true), or DeepSpeech 0.9's unidirectional LSTM that can stream (false)",
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "dropout_rate",
        0.05,
        "dropout rate of layer 1, and of layers 2, 3 and 5 unless --dropout_rate2, --dropout_rate3 or --dropout_rate6 say otherwise",
        lower_bound=0.0,
        upper_bound=0.99,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "relu_clip",
        20.0,
        "ReLU clipping value of the feed-forward layers",
        lower_bound=0.0,
        flag_values=flag_values,
    )
    F.DEFINE_enum(
        "model",
        "deepspeech",
        ["deepspeech", "deepspeech2"],
        "geometry: deepspeech (DeepSpeech 0.9: 3 dense + LSTM + dense over MFCC windows) or deepspeech2 (tensorflow/models research/deep_speech: 2 convolutions + --rnn_layers recurrent layers with batch norm); see doc/TRAINING.rst",
        flag_values=flag_values,
    )
    F.DEFINE_enum(
        "rnn_type",
        "gru",
        ["gru", "lstm", "rnn"],
        "deepspeech2: recurrent cell (the reference's default: gru)",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "rnn_layers",
        5,
        "deepspeech2: number of recurrent layers",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_alias("rnn_hidden_layers", "rnn_layers", flag_values=flag_values)
    F.DEFINE_integer(
        "rnn_hidden_size",
        800,
        "deepspeech2: cells of each recurrent layer per direction",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_alias("is_bidirectional", "bidirectional", flag_values=flag_values)
    F.DEFINE_float(
        "batch_norm_decay",
        0.997,
        "deepspeech2: decay of the batch-norm moving averages used at inference (reference: 0.997; short runs want less, e.g. 0.9)",
        lower_bound=0.0,
        upper_bound=0.999999,
        flag_values=flag_values,
    )
    # sphinx-doc: model_flags_end

    # sphinx-doc: train_flags_start
    F.DEFINE_integer(
        "epochs",
        75,
        "how many epochs (complete passes over the training data) this invocation trains, as in DeepSpeech 0.9: on a resumed checkpoint, this many more (see --max_epochs for a total)",
        lower_bound=0,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "learning_rate",
        0.001,
        "Adam learning rate",
        lower_bound=0.0,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "beta1",
        0.9,
        "Adam beta1",
        lower_bound=0.0,
        upper_bound=1.0,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "beta2",
        0.999,
        "Adam beta2",
        lower_bound=0.0,
        upper_bound=1.0,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "epsilon", 1e-8, "Adam epsilon", lower_bound=0.0, flag_values=flag_values
    )
    F.DEFINE_integer(
        "random_seed",
        4568,
        "seed for weight initialisation, dropout and batch shuffling",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "early_stop",
        False,
        "stop when the dev loss has not improved by es_min_delta for es_epochs epochs",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "es_epochs",
        25,
        "epochs without dev-loss improvement before early stopping",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "es_min_delta",
        0.05,
        "smallest dev-loss decrease that counts as an improvement",
        lower_bound=0.0,
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "reduce_lr_on_plateau",
        False,
        "multiply the learning rate by plateau_reduction when the dev loss has not improved for plateau_epochs epochs",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "plateau_epochs",
        10,
        "epochs without dev-loss improvement before reducing the learning rate",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "plateau_reduction",
        0.1,
        "factor the learning rate is multiplied by on a plateau",
        lower_bound=0.0,
        upper_bound=1.0,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "lr_warmup_steps",
        0,
        "raise the learning rate linearly from learning_rate/N to learning_rate over the first N updates (0 = no warm-up)",
        lower_bound=0,
        flag_values=flag_values,
    )
    F.DEFINE_enum(
        "lr_decay",
        "none",
        ["none", "cosine", "exponential"],
        "after the warm-up, decay the learning rate over the run's epochs (up to --max_epochs if set) down to lr_decay_floor x learning_rate: none keeps it constant",
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "lr_decay_floor",
        0.0,
        "the learning rate at the end of --lr_decay, as a fraction of --learning_rate (exponential needs > 0)",
        lower_bound=0.0,
        upper_bound=1.0,
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "shuffle_batches",
        True,
        "after the first (sorted, 'SortaGrad') epoch, visit the length-bucketed batches in a seeded random order",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "jit",
        False,
        "compile the train step with XLA (see doc/TRAINING.rst for when it helps)",
        flag_values=flag_values,
    )
    # sphinx-doc: train_flags_end

    # sphinx-doc: checkpoint_flags_start
    F.DEFINE_string(
        "checkpoint_dir",
        "",
        "directory to load and save checkpoints in (default: ~/.local/share/deepspeech/checkpoints)",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "load_checkpoint_dir",
        "",
        "directory to load checkpoints from (default: checkpoint_dir)",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "save_checkpoint_dir",
        "",
        "directory to save checkpoints in (default: checkpoint_dir)",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "drop_source_layers",
        0,
        "transfer learning: load --load_checkpoint_dir but re-initialise its last N layers (1: the output layer, for another alphabet; 2: also layer_5; ...); saves go to --save_checkpoint_dir",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "freeze_source_layers",
        0,
        "transfer learning (as Coqui STT): train only the last N layers, keep the loaded ones before them fixed",
        flag_values=flag_values,
    )
    F.DEFINE_enum(
        "load_train",
        "auto",
        ["auto", "best", "last", "init"],
        "what to start training from: best dev checkpoint, last checkpoint, fresh weights (init), or auto = best, then last, then init",
        flag_values=flag_values,
    )
    F.DEFINE_enum(
        "load_evaluate",
        "auto",
        ["auto", "best", "last"],
        "which checkpoint to test, export or infer with: best dev, last, or auto = best then last",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "checkpoint_secs",
        600,
        "save a checkpoint every this many seconds during an epoch (and always at epoch end)",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "max_to_keep",
        5,
        "how many recent 'last' checkpoints to keep",
        lower_bound=1,
        flag_values=flag_values,
    )
    # sphinx-doc: checkpoint_flags_end

    # sphinx-doc: eval_flags_start
    F.DEFINE_string(
        "one_shot_infer",
        "",
        "path to an audio file: print its transcript using the checkpoint, then exit",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "test_output_file",
        "",
        "write per-sample test results (src, res, wer, cer, loss) as JSON to this file",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "report_count",
        5,
        "how many best, median and worst samples to print per test set",
        lower_bound=0,
        flag_values=flag_values,
    )
    # sphinx-doc: eval_flags_end

    # sphinx-doc: decoder_flags_start
    F.DEFINE_string(
        "scorer_path",
        "",
        "path to a .scorer package (KenLM model + vocabulary + alphabet, see doc/SCORER.rst): the test pass and --one_shot_infer then use beam search with it; without it they decode greedily",
        flag_values=flag_values,
    )
    F.DEFINE_alias("scorer", "scorer_path", flag_values=flag_values)
    F.DEFINE_float(
        "lm_alpha",
        None,
        "language model weight (of ln P_lm, see doc/DECODER.rst); default: the scorer's stored default_alpha (DeepSpeech 0.9's English scorer: 0.931289039105002)",
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "lm_beta",
        None,
        "bonus added per word, in nats; default: the scorer's stored default_beta (DeepSpeech 0.9's English scorer: 1.1834137581510284)",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "beam_width",
        1024,
        "beam width of the CTC beam search (hypotheses kept per frame)",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "cutoff_prob",
        1.0,
        "per frame, try only the most likely labels whose probabilities sum to this (1.0 = no cut)",
        lower_bound=0.0,
        upper_bound=1.0,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "cutoff_top_n",
        300,
        "per frame, try at most this many of the most likely labels",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "decoder_processes",
        None,
        "processes that beam-search a test batch in parallel (default: one per CPU core)",
        lower_bound=1,
        flag_values=flag_values,
    )
    # sphinx-doc: decoder_flags_end

    # sphinx-doc: export_flags_start
    F.DEFINE_string(
        "export_dir",
        "",
        "write the trained model here (SavedModel + metadata.json, and <export_file_name>.tflite with --export_tflite) after training/testing",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "export_tflite",
        False,
        "export a TensorFlow Lite model as well: <export_dir>/<export_file_name>.tflite, self-describing, run by the deepspeech client (doc/EXPORT.rst)",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_file_name",
        "output_graph",
        "base name of exported model files",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "remove_export",
        False,
        "remove an earlier export (<export_file_name>, .tflite, metadata.json) from "
        "--export_dir before exporting; other files stay, and an --export_dir that "
        "is or contains the checkpoint dir is refused",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "export_quantize",
        False,
        "TFLite export: store weights as int8 (post-training dynamic-range quantisation; ~4x smaller, see doc/EXPORT.rst for its WER cost)",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "export_beam_width",
        500,
        "default beam width stored in the exported model's metadata (the client's beamWidth())",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_language",
        "",
        "language of the model, stored in its metadata (e.g. en-US)",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_author_id",
        "author",
        "author of the model, stored in its metadata",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_model_name",
        "model",
        "name of the model, stored in its metadata",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_model_version",
        "0.0.1",
        "version of the model, stored in its metadata",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_license",
        "MPL-2.0",
        "license of the model (SPDX identifier), stored in its metadata",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_description",
        "",
        "free-text description of the model, stored in its metadata",
        flag_values=flag_values,
    )
    # sphinx-doc: export_flags_end

    # sphinx-doc: cluster_flags_start
    F.DEFINE_integer(
        "num_gpus",
        None,
        "local replicas (the DeepSpeech2 reference's flag): N = the first N GPUs, -1 = every visible GPU, 0 = CPU only; unset: every GPU when there are several, else one device",
        lower_bound=-1,
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "worker_hosts",
        "",
        "comma-separated host:port of every worker, the same list on each; this process is the one at --task_index and task 0 is the chief (empty = one process; TF_CONFIG is used when set and this is empty)",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "task_index",
        0,
        "position of this process in --worker_hosts",
        lower_bound=0,
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "ps_hosts",
        "",
        "DeepSpeech's parameter servers: accepted so its scripts parse, rejected with an explanation (every process is a worker here)",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "job_name",
        "worker",
        "DeepSpeech's job name: 'worker' (or 'localhost'); 'ps' is rejected",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "heartbeat_timeout_s",
        30,
        "a worker that sends no heartbeat for this many seconds counts as dead: every other worker stops with an error naming it",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "collective_timeout_s",
        600,
        "an all-reduce that waits longer than this many seconds for a peer fails the run (catches a hung, not dead, worker; 0 = wait forever)",
        lower_bound=0,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "cluster_start_timeout_s",
        600,
        "how long the workers wait at start for all of --worker_hosts to connect",
        lower_bound=1,
        flag_values=flag_values,
    )
    # sphinx-doc: cluster_flags_end

    # sphinx-doc: log_flags_start
    F.DEFINE_string(
        "summary_dir",
        "",
        "TensorBoard summaries directory (default: ~/.local/share/deepspeech/summaries)",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "show_progressbar",
        True,
        "show progress bars for the train, dev and test passes",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "log_level",
        1,
        "log level: 0 DEBUG, 1 INFO, 2 WARNING, 3 ERROR",
        lower_bound=0,
        upper_bound=3,
        flag_values=flag_values,
    )
    # sphinx-doc: log_flags_end

    _define_device_flags(flag_values)

    # sphinx-doc: notify_flags_start
    F.DEFINE_multi_string(
        "notify",
        [],
        "send training events (start, epochs, best model, early stop, finish, crash) to this apprise URL, e.g. tgram://token/chat or json://host:port/path; repeatable (doc/TRAINING.rst)",
        flag_values=flag_values,
    )
    # sphinx-doc: notify_flags_end

    _define_ds09_flags(flag_values)
    _register_validators(flag_values)


def _define_device_flags(flag_values: flags.FlagValues) -> None:
    """GPU, precision and thread flags (DeepSpeech 0.9 names; doc/GPU.rst)."""
    # sphinx-doc: device_flags_start
    F.DEFINE_boolean(
        "train_cudnn",
        None,
        "run the LSTM through cuDNN's fused kernel, with the same variables as the default path (checkpoints interchange both ways); default: on when a GPU is visible. Without a GPU, --train_cudnn runs the same math on the CPU (slower than the default path)",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "load_cudnn",
        False,
        "DeepSpeech 0.9: convert a cuDNN checkpoint for CPU use. Accepted; not needed: a DeepSpeech 0.9 --train_cudnn checkpoint is read like any 0.9 checkpoint (its canonical LSTM weights; doc/TRAINING.rst), and checkpoints from our --train_cudnn already hold the default path's variables",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "automatic_mixed_precision",
        False,
        "compute in 16-bit floats (see --mixed_precision_dtype) with float32 variables; float16 uses dynamic loss scaling. Checkpoints and exports stay float32",
        flag_values=flag_values,
    )
    F.DEFINE_enum(
        "mixed_precision_dtype",
        "auto",
        ["auto", "float16", "bfloat16"],
        "16-bit type of --automatic_mixed_precision: auto = float16 on a GPU (tensor cores since Volta), bfloat16 on a CPU",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "use_allow_growth",
        False,
        "allocate GPU memory as needed instead of (almost) all of it at start",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "inter_op_parallelism_threads",
        0,
        "threads that run independent ops in parallel (0 = chosen for this CPU: the usable "
        "cores; doc/PERFORMANCE.rst)",
        lower_bound=0,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "intra_op_parallelism_threads",
        0,
        "threads one op (a matmul) may use (0 = chosen for this CPU: the usable cores)",
        lower_bound=0,
        flag_values=flag_values,
    )
    # sphinx-doc: device_flags_end


def _define_ds09_flags(flag_values: flags.FlagValues) -> None:
    """DeepSpeech 0.9.3 flags that the sections above do not define (issue 12).

    Every 0.9.3 flag is accepted with its 0.9 meaning; ``util.config.DS09_IGNORED``
    says which ones only warn, and doc/DEEPSPEECH09.rst gives the reasons.
    """
    # sphinx-doc: ds09_data_flags_start
    F.DEFINE_string(
        "metrics_files",
        "",
        "comma-separated list of CSV/SDB files whose CTC loss is computed and reported after each dev pass; unlike --dev_files it never affects the best checkpoint, early stopping or the learning rate",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "read_buffer",
        "1MB",
        "read buffer size for sample databases (.sdb), with an optional suffix KB, MB, GB or TB (powers of 1024)",
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "cache_for_epochs",
        0,
        "rebuild the --feature_cache every this many epochs (0 = never; only useful when features change between epochs)",
        lower_bound=0,
        flag_values=flag_values,
    )
    # sphinx-doc: ds09_data_flags_end

    # sphinx-doc: ds09_model_flags_start
    F.DEFINE_float(
        "dropout_rate2",
        -1.0,
        "dropout rate of layer 2 (negative = --dropout_rate)",
        upper_bound=0.99,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "dropout_rate3",
        -1.0,
        "dropout rate of layer 3 (negative = --dropout_rate)",
        upper_bound=0.99,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "dropout_rate4",
        0.0,
        "DeepSpeech 0.9's rate for layer 4 (the LSTM), which 0.9 never applied: accepted, a non-zero value only warns",
        upper_bound=0.99,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "dropout_rate5",
        0.0,
        "DeepSpeech 0.9's unused fifth rate (layer 5 takes --dropout_rate6 there and here): accepted, a non-zero value only warns",
        upper_bound=0.99,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "dropout_rate6",
        -1.0,
        "dropout rate of layer 5, the dense layer after the LSTM (negative = --dropout_rate; DeepSpeech 0.9's numbering)",
        upper_bound=0.99,
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "layer_norm",
        False,
        "layer normalisation after the clipped ReLU of layers 1, 2, 3 and 5 (DeepSpeech 0.9's --layer_norm); part of the geometry stored in the checkpoint",
        flag_values=flag_values,
    )
    # sphinx-doc: ds09_model_flags_end

    # sphinx-doc: ds09_train_flags_start
    F.DEFINE_integer(
        "max_epochs",
        0,
        "new: stop once the checkpoint holds this many epochs in all, counting those of earlier runs (0 = no limit); --epochs counts this invocation's epochs only, as in DeepSpeech 0.9",
        lower_bound=0,
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "force_initialize_learning_rate",
        False,
        "start from --learning_rate even when the checkpoint holds a rate lowered by --reduce_lr_on_plateau",
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "log_placement",
        False,
        "log the device every TensorFlow op runs on",
        flag_values=flag_values,
    )
    # sphinx-doc: ds09_train_flags_end

    # sphinx-doc: ds09_export_flags_start
    F.DEFINE_integer(
        "export_batch_size",
        1,
        "DeepSpeech 0.9's batch size of the exported graph: the export here takes one utterance per call (0.9's TFLite export forced 1 as well); other values only warn",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_integer(
        "n_steps",
        16,
        "output frames the streaming export computes per call (stored in the model's metadata; higher means more latency per step)",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_boolean(
        "export_zip",
        False,
        "export a TFLite model (implies --export_tflite), copy --scorer_path beside it and pack the export directory as <export_dir>.zip",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_contact_info",
        "",
        "public contact information of the model's author (e-mail, issue tracker...), stored in its metadata",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_min_ds_version",
        "",
        "minimum DeepSpeech client version the model works with, stored in its metadata",
        flag_values=flag_values,
    )
    F.DEFINE_string(
        "export_max_ds_version",
        "",
        "maximum DeepSpeech client version the model works with, stored in its metadata",
        flag_values=flag_values,
    )
    # sphinx-doc: ds09_export_flags_end

    # sphinx-doc: ds09_lm_optimizer_flags_start
    F.DEFINE_integer(
        "n_trials",
        100,
        "lm_optimizer.py: number of optuna trials (alpha/beta pairs tried); each costs one beam search over --test_files, and the printed seconds per trial tell the cost (DeepSpeech 0.9: 2400)",
        lower_bound=1,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "lm_alpha_max",
        5.0,
        "lm_optimizer.py: largest lm_alpha tried",
        lower_bound=0.0,
        flag_values=flag_values,
    )
    F.DEFINE_float(
        "lm_beta_max",
        5.0,
        "lm_optimizer.py: largest lm_beta tried",
        lower_bound=0.0,
        flag_values=flag_values,
    )
    # sphinx-doc: ds09_lm_optimizer_flags_end

    # Training augmentation (doc/TRAINING.rst "Augmentation"; util/augmentations.py).
    # sphinx-doc: augment_flags_start
    F.DEFINE_multi_string(
        "augment",
        None,
        "augment training samples (never dev/test), DeepSpeech 0.9's 'kind[param=value,...]', repeatable: overlay, reverb, resample, codec, volume, pitch, tempo, warp, frequency_mask, time_mask, dropout, add, multiply (doc/TRAINING.rst, Augmentation)",
        flag_values=flag_values,
    )
    # sphinx-doc: augment_flags_end


def _register_validators(flag_values: flags.FlagValues) -> None:
    """Cross-flag rules; absl reports a violation naming the flags before anything runs."""
    F.register_multi_flags_validator(
        ["feature_win_len", "feature_win_step"],
        lambda f: None in (f["feature_win_len"], f["feature_win_step"])
        or f["feature_win_step"] <= f["feature_win_len"],
        message="--feature_win_step must not exceed --feature_win_len (frames would skip audio)",
        flag_values=flag_values,
    )
    F.register_multi_flags_validator(
        ["train_files", "epochs"],
        lambda f: not f["train_files"] or f["epochs"] > 0,
        message="--epochs must be > 0 when --train_files is given",
        flag_values=flag_values,
    )
    # --- reliability (issue 11 item 10): flags that would be silently ignored --------
    F.register_multi_flags_validator(
        ["train_files", "dev_files", "early_stop", "reduce_lr_on_plateau"],
        lambda f: not f["train_files"]
        or bool(f["dev_files"])
        or not (f["early_stop"] or f["reduce_lr_on_plateau"]),
        message="--early_stop and --reduce_lr_on_plateau watch the dev loss: give "
        "--dev_files, or drop them",
        flag_values=flag_values,
    )
    # --- end reliability ---------------------------------------------------------
    F.register_validator(
        "alphabet_config_path",
        bool,
        message="--alphabet_config_path must not be empty",
        flag_values=flag_values,
    )
