#!/usr/bin/env python3
"""DeepSpeech training CLI: flags -> Config once -> train / test / export / one-shot.

The edge: parses flags, builds the frozen Config, turns signals into a stop request,
prints reports and turns errors into exit codes (doc/TRAINING.rst, "Exit status").
Everything else lives in util/. Users see ``USAGE``, never this docstring.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from util import cpu_settings  # noqa: E402  (no TensorFlow)

cpu_settings.apply()  # oneDNN etc. for this CPU, before TensorFlow is imported

from absl import app, flags, logging  # noqa: E402

from util import flags as ds_flags  # noqa: E402

ds_flags.define_flags()
FLAGS = flags.FLAGS
ABSL_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
USAGE = """usage: python DeepSpeech.py [flags]

Train, test and export a DeepSpeech model, e.g.

  python DeepSpeech.py --train_files train.csv --dev_files dev.csv \\
      --test_files test.csv --checkpoint_dir ckpt --export_dir model

Ctrl-C (or SIGTERM) stops training at the next batch and saves a checkpoint; the same
command resumes. Docs: doc/TRAINING.rst. --helpfull adds the logging library's flags.
"""
HELP_ARGS = {"-h", "-?", "--help", "-help", "--helpshort", "-helpshort"}
HELPFULL_ARGS = {"--helpfull", "-helpfull"}
EXIT_USAGE = 2  # bad flags (argparse's convention)
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}  # 128 + signal number, as the shell


def run(cfg, notify_urls=()) -> None:
    """train -> test -> export -> one-shot, each when its flags ask for it.

    ``notify_urls``: --notify, kept out of cfg (they may hold tokens; util/notify.py).
    """
    from ctcdecode import output_alphabet
    from util import devices, distributed, preflight

    cfg = devices.configure(cfg)  # threads, GPU memory growth, --train_cudnn auto
    cluster = distributed.tf_config(cfg.cluster, os.environ)
    chief = distributed.is_chief(cluster)
    evaluating = cfg.data.test_files or cfg.export.export_dir or cfg.eval.one_shot_infer
    if chief:  # only the chief writes; check where, before any work
        preflight.check_outputs(cfg, bool(cfg.data.train_files), bool(evaluating))
    # The strategy comes first: a cluster's collectives need an uninitialised TF.
    replica_devices = distributed.local_devices(cfg.cluster.num_gpus)
    strategy = distributed.make_strategy(replica_devices, cluster, cfg.cluster)
    alphabet = output_alphabet(
        cfg.data.alphabet_config_path, cfg.data.bytes_output_mode
    )
    result = None
    if cfg.data.train_files:
        cfg, result = _train(cfg, alphabet, strategy, cluster, chief, notify_urls)
    tests = []
    if chief and evaluating:  # testing, exporting and inferring are the chief's alone
        tests = _test_export_infer(cfg, alphabet)
    if chief and result is not None and not result.already_finished:
        from util.training import format_summary

        # stderr, with the logs: stdout keeps only results (reports, the transcript).
        print(format_summary(result, tests, cfg.export.export_dir), file=sys.stderr)


def _train(cfg, alphabet, strategy, cluster, chief, notify_urls=()):
    """Train; returns the config whose checkpoint dir is what this run just wrote."""
    import dataclasses

    import tensorflow as tf

    from util import distributed, evaluate, notify, training

    if not chief:  # one progress bar per cluster: the chief's
        cfg = dataclasses.replace(
            cfg, train=dataclasses.replace(cfg.train, show_progressbar=False)
        )
    # A missing scorer or one built for another alphabet fails before training.
    evaluate.load_scorer(cfg.decoder, alphabet)
    session = training.build_session(cfg, alphabet, strategy, is_chief=chief)
    try:
        with notify.training_events(notify_urls if chief else (), cfg) as events:
            with training.stop_on_signals() as stop:
                result = training.train(session, stop, on_epoch=events.epoch)
            events.finished(result)
    except tf.errors.OpError as err:
        if cluster is None:
            raise
        failure = distributed.describe_failure(err, cluster)
        raise distributed.ClusterFailureError(failure) from err
    finally:
        session.checkpoints.close()
    if cluster is not None and chief:
        logging.info(
            "training done: the other workers exit now (TF may log that "
            "they stopped sending heartbeats; expected)"
        )
    checkpoint = dataclasses.replace(
        cfg.checkpoint, load_checkpoint_dir=cfg.checkpoint.save_checkpoint_dir
    )
    return dataclasses.replace(cfg, checkpoint=checkpoint), result


def _test_export_infer(cfg, alphabet):
    """From the checkpoint, with the geometry and alphabet stored beside it."""
    from util import (
        checkpoints,
        distributed,
        evaluate,
        evaluate_tools,
        export,
        training,
    )

    cfg, alphabet = checkpoints.as_trained(cfg, alphabet)
    session = training.build_session(cfg, alphabet, distributed.make_strategy([]))
    session.checkpoints.restore_for_evaluation()
    tests = []
    if cfg.data.test_files:
        sets = training.load_sets(
            cfg.data.test_files, cfg, alphabet, cfg.data.limit_test
        )
        reports = evaluate.run_tests(session.steps, sets, cfg, alphabet)
        for report in reports:
            print(
                evaluate_tools.format_report(report, cfg.eval.report_count), flush=True
            )
        if cfg.eval.test_output_file:
            evaluate_tools.write_results_json(cfg.eval.test_output_file, reports)
        tests = [(r.name, r.wer, r.cer) for r in reports]
        _log_test_scalars(cfg, session, tests)
    if cfg.export.export_dir:
        export.prepare_export_dir(cfg.export)
        export.export_saved_model(session.model, cfg, alphabet)
        if cfg.export.export_tflite:
            export.export_tflite(session.model, cfg, alphabet)
        export.write_model_card(cfg.export)
        if cfg.export.export_zip:
            export.package_zip(cfg.export, cfg.decoder.scorer_path)
    if cfg.eval.one_shot_infer:
        infer = cfg.eval.one_shot_infer
        print(evaluate.transcribe_file(session.steps, infer, cfg, alphabet))
    return tests


def _log_test_scalars(cfg, session, tests) -> None:
    """Test WER/CER per set into TensorBoard, at the checkpoint's global step."""
    from util.training import Summaries, set_tags

    summaries = Summaries(cfg.train.summary_dir)
    step = int(session.state.global_step.numpy())
    for (_, wer, cer), tag in zip(tests, set_tags([t[0] for t in tests])):
        summaries.add("test", f"wer/{tag}", wer, step)
        summaries.add("test", f"cer/{tag}", cer, step)
    summaries.flush()
    summaries.close()


def _quiet_tensorflow_info(record) -> bool:
    """Keep TF's own INFO chatter (saver, signatures) out of the run's log."""
    return record.levelno > logging.converter.STANDARD_INFO or (
        f"{os.sep}tensorflow{os.sep}" not in record.pathname
    )


def main(argv) -> int:
    del argv
    logging.set_verbosity(ABSL_LEVELS[FLAGS.log_level])
    if FLAGS.log_level > 0:
        logging.get_absl_handler().addFilter(_quiet_tensorflow_info)
    from util.checkpoints import CheckpointError
    from util.config import Config, ds09_warnings
    from util.distributed import ClusterFailureError
    from util.preflight import OutputLocationError
    from util.training import TrainingInterrupted

    values = FLAGS.flag_values_dict()
    try:
        cfg = Config.from_flags(values)
    except ValueError as err:
        return _usage_error(str(err))
    for warning in ds09_warnings(values):
        logging.warning("%s", warning)
    if cfg.export.export_tflite and not cfg.export.export_dir:
        return _usage_error("--export_tflite needs --export_dir")
    if not (
        cfg.data.train_files
        or cfg.data.test_files
        or cfg.export.export_dir
        or cfg.eval.one_shot_infer
    ):
        return _usage_error(
            "nothing to do: give --train_files, --test_files, --export_dir or "
            "--one_shot_infer"
        )
    try:
        run(cfg, tuple(FLAGS.notify))
    except (ClusterFailureError, CheckpointError, OutputLocationError) as err:
        logging.error("%s", err)
        return 1
    except (ValueError, FileNotFoundError, OSError) as err:
        logging.error("%s: %s", type(err).__name__, err)
        return 1
    except TrainingInterrupted as stop:
        saved = f"saved {stop.checkpoint}" if stop.checkpoint else "nothing new to save"
        logging.warning(
            "%s: training stopped in epoch %d after batch %d; %s. Re-run the same "
            "command to resume",
            stop.reason, stop.epoch, stop.step, saved,
        )  # fmt: skip
        return EXIT_SIGNAL.get(stop.reason, 1)
    except KeyboardInterrupt:
        logging.warning("interrupted: the last checkpoint is kept; re-run to resume")
        return 130
    return 0


def _usage_error(message: str) -> int:
    """The error and a hint, without absl's usage dump (the module docstring)."""
    sys.stderr.write(
        f"DeepSpeech.py: error: {message}\n"
        "Run `python DeepSpeech.py --help` to list the flags.\n"
    )
    return EXIT_USAGE


def _parse_flags(argv):
    """absl's flag parsing, with help that exits 0 and errors without the docstring."""
    wanted = set(argv[1 : argv.index("--")] if "--" in argv else argv[1:])
    if wanted & (HELP_ARGS | HELPFULL_ARGS):
        full = bool(wanted & HELPFULL_ARGS)
        listing = FLAGS.get_help() if full else FLAGS.module_help(ds_flags.__name__)
        sys.stdout.write(USAGE + "\nflags:\n" + listing + "\n")
        sys.exit(0)
    try:
        return FLAGS(argv)
    except flags.Error as err:
        sys.exit(_usage_error(str(err)))


if __name__ == "__main__":
    from util.progress import PipeSafeStream

    sys.stdout, sys.stderr = PipeSafeStream(sys.stdout), PipeSafeStream(sys.stderr)
    app.run(main, argv=sys.argv, flags_parser=_parse_flags)
