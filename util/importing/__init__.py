"""Corpus import tooling (no TensorFlow, no training modules).

``importers`` (the shared core the ``bin/import_*.py`` scripts run on), ``importer_cli``
(their shared options), ``archives`` (download, verify, extract), ``conversion`` (the
parallel WAV conversion), ``transcripts`` (cleaning against the alphabet),
``check_characters`` (alphabet coverage of CSVs) and ``shards`` (writing TFRecord
shards; ``util.tfrecords`` reads them). See doc/DATA.rst.
"""
