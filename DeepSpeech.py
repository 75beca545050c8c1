#!/usr/bin/env python3
"""DeepSpeech training CLI: flags -> Config once -> train / test / export / one-shot.

    python DeepSpeech.py --train_files train.csv --dev_files dev.csv \
        --test_files test.csv --checkpoint_dir ckpt --export_dir model

The edge: parses flags, builds the frozen Config, prints reports and turns errors into
exit codes. Everything else lives in util/.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from absl import app, flags, logging  # noqa: E402

from util import flags as ds_flags  # noqa: E402

ds_flags.define_flags()
FLAGS = flags.FLAGS
ABSL_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}


def run(cfg, notify_urls=()) -> None:
    """train -> test -> export -> one-shot, each when its flags ask for it.

    ``notify_urls``: --notify, kept out of cfg (they may hold tokens; util/notify.py).
    """
    from ctcdecode import Alphabet
    from util import devices, distributed

    cfg = devices.configure(cfg)  # threads, GPU memory growth, --train_cudnn auto
    # The strategy comes first: a cluster's collectives need an uninitialised TF.
    cluster = distributed.tf_config(cfg.cluster, os.environ)
    strategy = distributed.make_strategy(cluster=cluster, timeouts=cfg.cluster)
    chief = distributed.is_chief(cluster)
    alphabet = Alphabet(cfg.data.alphabet_config_path)
    if cfg.data.train_files:
        cfg = _train(cfg, alphabet, strategy, cluster, chief, notify_urls)
    evaluating = cfg.data.test_files or cfg.export.export_dir or cfg.eval.one_shot_infer
    if chief and evaluating:  # testing, exporting and inferring are the chief's alone
        _test_export_infer(cfg, alphabet)


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
            events.finished(training.train(session, on_epoch=events.epoch))
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
    return dataclasses.replace(cfg, checkpoint=checkpoint)


def _test_export_infer(cfg, alphabet) -> None:
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
    from util.config import Config, ds09_warnings
    from util.distributed import ClusterFailureError

    values = FLAGS.flag_values_dict()
    try:
        cfg = Config.from_flags(values)
    except ValueError as err:
        raise app.UsageError(str(err))
    for warning in ds09_warnings(values):
        logging.warning("%s", warning)
    if cfg.export.export_tflite and not cfg.export.export_dir:
        raise app.UsageError("--export_tflite needs --export_dir")
    if not (
        cfg.data.train_files
        or cfg.data.test_files
        or cfg.export.export_dir
        or cfg.eval.one_shot_infer
    ):
        raise app.UsageError(
            "nothing to do: give --train_files, --test_files, --export_dir or "
            "--one_shot_infer"
        )
    try:
        run(cfg, tuple(FLAGS.notify))
    except ClusterFailureError as err:
        logging.error("%s", err)
        return 1
    except (ValueError, FileNotFoundError, OSError) as err:
        logging.error("%s: %s", type(err).__name__, err)
        return 1
    except KeyboardInterrupt:
        logging.warning("interrupted: the last checkpoint is kept; re-run to resume")
        return 130
    return 0


if __name__ == "__main__":
    app.run(main, argv=sys.argv)
