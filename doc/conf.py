"""Sphinx configuration for the DeepSpeech (TF2) user documentation.

The flag reference (FLAGS.rst) is rendered by the ``flag-table`` directive of
``_ext/flag_table.py`` from ``util/flags.py`` itself, which it loads by path (that file
imports only absl): building the docs needs no TensorFlow and no sys.path change.
``OWN_DATA.rst`` includes ``bin/run-own-data-example.sh``, which CI runs.
"""

import importlib.util
import os
import sys

project = "DeepSpeech (TF2)"
author = "DeepSpeech TF2 contributors"
copyright = "DeepSpeech TF2 contributors; DeepSpeech 0.9 by Mozilla"
release = "0.1.0"
version = release

extensions = []
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
pygments_style = "sphinx"

# Read the Docs look when the theme is installed (requirements-dev.txt), else built-in.
if importlib.util.find_spec("sphinx_rtd_theme") is not None:
    html_theme = "sphinx_rtd_theme"
else:
    html_theme = "alabaster"
html_title = "DeepSpeech (TF2)"
html_static_path = ["_static"]
html_css_files = ["flag_table.css"]  # wrap the help column of the flag tables


def setup(app):
    """Register the local ``flag-table`` directive (loaded by path, see above)."""
    path = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "_ext", "flag_table.py"
    )
    spec = importlib.util.spec_from_file_location("flag_table", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["flag_table"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.setup(app)
