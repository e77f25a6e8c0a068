"""Fill the Jinja2 templates in templates/ (found next to this file, wherever the process runs).

The page (report.html.j2) inlines its CSS and every image, so report.html is one self-contained
file. Each section's template is rendered on its own: one that fails shows its error in its
section instead of costing the page.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict

import jinja2
from markupsafe import Markup

from pipelines.report.formatting import describe, fmt_stat, fmt_value, thousands
from pipelines.runs.base import format_duration

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
PAGE = "report.html.j2"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(stat=fmt_stat, value=fmt_value, thousands=thousands, duration=format_duration)
    return env


def render_template(name: str, **context: Any) -> str:
    """Any template of templates/ (e.g. the slice chart page of `mlops slices --html`)."""
    return environment().get_template(name).render(**context)


def _section_body(context: Dict[str, Any], section) -> Markup:
    try:
        return Markup(environment().get_template(section.template).render(**context, s=section))
    except Exception as exc:  # a section that cannot be shown must not cost the page
        problem = f"could not show this section: {describe(exc)}"
        section.error = f"{section.error}; {problem}" if section.error else problem
        return Markup("")


def render(context: Dict[str, Any]) -> str:
    """The report page of a build_context() result."""
    return render_template(PAGE, **context, section_body=functools.partial(_section_body, context))
