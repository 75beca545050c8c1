#!/usr/bin/env python3
"""Transcribe long recordings, lists and folders (DeepSpeech 0.9's transcribe.py).

    python transcribe.py --checkpoint_dir runs/my_model/checkpoints --src talks/ \
        --recursive --scorer_path kenlm.scorer

    python transcribe.py --model output_graph.tflite --src talk.mp3   # no TensorFlow

The work is ``deepspeech-transcribe`` (native_client/python/deepspeech/transcribe.py:
VAD split, batched model and beam search, JSON/SRT/WebVTT, resume). This script adds
0.9's ``--checkpoint_dir``: the checkpoint, with the geometry and alphabet stored beside
it, is converted once to a temporary TFLite model (the export that
``--export_tflite`` writes), so both modes run the same inference. See doc/USING.rst.
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from util import cpu_settings  # noqa: E402  (no TensorFlow)

cpu_settings.apply()  # --checkpoint_dir runs TensorFlow (doc/PERFORMANCE.rst)


def _parser() -> argparse.ArgumentParser:
    from deepspeech import transcribe

    p = argparse.ArgumentParser(
        description="Transcribe long audio files, lists and folders (VAD-split) to "
        "JSON, SRT and WebVTT; model from --checkpoint_dir or --model"
    )
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--checkpoint_dir", help="training checkpoint (needs TensorFlow)"
    )
    model.add_argument("--model", help="exported .tflite model")
    p.add_argument(
        "--load_evaluate",
        default="auto",
        choices=["auto", "best", "last"],
        help="which checkpoint of --checkpoint_dir",
    )
    transcribe.add_arguments(p)
    return p


def checkpoint_to_tflite(checkpoint_dir: str, load_evaluate: str, out_dir: str) -> str:
    """Export the checkpoint in ``checkpoint_dir`` to ``out_dir``; the .tflite path."""
    import dataclasses

    from ctcdecode import output_alphabet
    from util import checkpoints, distributed, export, training
    from util.config import Config

    base = Config()
    cfg = dataclasses.replace(
        base,
        checkpoint=dataclasses.replace(
            base.checkpoint,
            load_checkpoint_dir=checkpoint_dir,
            load_evaluate=load_evaluate,
        ),
        export=dataclasses.replace(base.export, export_dir=out_dir),
    )
    if not os.path.isfile(os.path.join(checkpoint_dir, checkpoints.CONFIG_FILE)):
        raise ValueError(
            f"--checkpoint_dir {checkpoint_dir!r} has no {checkpoints.CONFIG_FILE}: "
            "give the directory DeepSpeech.py --checkpoint_dir wrote"
        )
    cfg, alphabet = checkpoints.as_trained(
        cfg, output_alphabet(cfg.data.alphabet_config_path, cfg.data.bytes_output_mode)
    )
    session = training.build_session(cfg, alphabet, distributed.make_strategy([]))
    session.checkpoints.restore_for_evaluation()
    return export.export_tflite(session.model, cfg, alphabet)


def main(argv=None) -> int:
    from deepspeech import transcribe

    args = _parser().parse_args(argv)
    try:
        if args.model:
            return transcribe.main_with(args, args.model)
        with tempfile.TemporaryDirectory(prefix="transcribe-") as tmp:
            path = checkpoint_to_tflite(args.checkpoint_dir, args.load_evaluate, tmp)
            return transcribe.main_with(args, path)
    except (ValueError, OSError) as err:
        print(f"transcribe.py: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
