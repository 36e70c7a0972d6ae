"""Jinja2 rendering of acknowledgements and notices.

Customer-supplied values reach templates only as data, never as template source,
and the environments are sandboxed: a subject containing ``{{ 7*7 }}`` renders as
those characters.  The HTML environment autoescapes.  Templates are chosen by
severity: ``ack/emergency.txt.j2`` if it exists, else ``ack/default.txt.j2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape
from jinja2.sandbox import SandboxedEnvironment


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str | None


class Renderer:
    def __init__(self, template_dir: Path) -> None:
        self.template_dir = template_dir
        self._text_env: SandboxedEnvironment
        self._html_env: SandboxedEnvironment
        self.reload()

    def reload(self) -> None:
        """Re-read templates from disk (SIGHUP)."""
        loader = FileSystemLoader(str(self.template_dir))
        self._text_env = SandboxedEnvironment(
            loader=loader, autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True
        )
        self._html_env = SandboxedEnvironment(
            loader=loader,
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
        )

    def _pick(self, env: SandboxedEnvironment, name: str, variant: str, ext: str):  # type: ignore[no-untyped-def]
        return env.select_template([f"{name}/{variant}.{ext}.j2", f"{name}/default.{ext}.j2"])

    def render(self, name: str, variant: str, context: dict[str, Any]) -> Rendered:
        text = self._pick(self._text_env, name, variant, "txt").render(**context)
        try:
            html_template = self._pick(self._html_env, name, variant, "html")
        except TemplateNotFound:
            return Rendered(text=text, html=None)
        return Rendered(text=text, html=html_template.render(**context))

    def check(self) -> None:
        """Fail early (at start-up) when the default templates are missing."""
        self._text_env.get_template("ack/default.txt.j2")
