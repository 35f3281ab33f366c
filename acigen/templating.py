"""The jinja2 environment of the Makefile and dot templates.

Imported only by render_make.py and render_dot.py, so that the usual run
(build.ninja, laid out in Python) does not import jinja2 at all.
"""

from __future__ import annotations

import os

import jinja2

from acigen import templates


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.dirname(templates.__file__)),
        undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True)
