"""Sphinx configuration of the course website (``make site``; tools/build_site.py).

One build per language, from the student edition's stored notebooks (outputs as
stored, nothing re-executed, no answers): tools/build_site.py makes the source folder
(the notebooks under their own names, an index with the table of contents and the
glossary page) and passes the language with ``-D language=es``.
"""

from __future__ import annotations

import os

project = "xenlab"
author = "the xenlab developers"
copyright = "2026, the xenlab developers"   # noqa: A001 (Sphinx's name)
extensions = ["myst_nb"]
language = "en"
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nb_execution_mode = "off"                  # the stored outputs, as nbval checked them
nb_output_stderr = "show"
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]
html_theme = "sphinx_book_theme"
html_title = "xenlab"
html_static_path: list[str] = []
html_theme_options = {
    "repository_url": os.environ.get("XENLAB_REPOSITORY_URL", "https://github.com/xenlab/xenlab"),
    "repository_branch": "main",
    "path_to_docs": "labs-student",        # a page's notebook, as the repository holds it
    "use_repository_button": True,
    "launch_buttons": {
        "binderhub_url": os.environ.get("XENLAB_BINDERHUB_URL", "https://mybinder.org"),
        "jupyterhub_url": os.environ.get("XENLAB_JUPYTERHUB_URL", ""),
        "notebook_interface": "jupyterlab",
    },
}
