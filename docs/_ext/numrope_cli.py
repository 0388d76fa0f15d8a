"""``.. numrope-cli::``: the command-line reference, generated from numrope's own argparse parsers.

Each subcommand of :func:`numrope.cli.build_parser` becomes a section: what it does, its usage line,
every option (with its metavar, choices and default) and its epilog, where the exit statuses are.
A command whose epilog names no exit status is reported as a warning, which fails the ``-W`` build.
"""

from __future__ import annotations

import argparse
import os
import re

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

_LABEL = re.compile(r"^([a-z][a-z ]*): ")  # an epilog paragraph such as "exit status: 0 ..."


def _subcommands(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    return [(name, sub, helps.get(name, "")) for name, sub in action.choices.items()]


def _usage(parser):
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; the page gets one width
    try:
        return parser.format_usage().strip()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _invocation(action):
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    elif action.choices is not None:
        metavar = "{" + ",".join(map(str, action.choices)) + "}"
    return ", ".join(f"{opt} {metavar}" for opt in action.option_strings)


def _text(text):
    """A paragraph of plain text in which option names are literals (no typographic dashes)."""
    para = nodes.paragraph()
    for i, part in enumerate(re.split(r"(--[a-z][a-z-]*)", text)):
        if part:
            para += nodes.literal(text=part) if i % 2 else nodes.Text(part)
    return para


def _summary(name, parser, help_text):
    """What the command does: its description without the "numrope NAME: " prefix, else its help."""
    text = (parser.description or "").replace("``", "")
    text = text.removeprefix(f"numrope {name}:").strip() or help_text
    return text[:1].upper() + text[1:].rstrip(".") + "."


def _option_list(parser):
    items = nodes.definition_list()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        text = action.help or ""
        if action.required:
            text += " (required)"
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0
        if shown and "default" not in text and not isinstance(action, argparse.BooleanOptionalAction):
            text += f" (default {action.default})"
        item = nodes.definition_list_item()
        item += nodes.term("", "", nodes.literal(text=_invocation(action)))
        item += nodes.definition("", _text(text))
        items += item
    return items


def _epilog(parser):
    """The epilog's paragraphs, each "label: text" with the label in bold."""
    paragraphs, current = [], []
    for line in (parser.epilog or "").splitlines():
        if _LABEL.match(line) and current:
            paragraphs.append(" ".join(current))
            current = []
        if line.strip():
            current.append(line.strip())
    if current:
        paragraphs.append(" ".join(current))
    out = []
    for text in paragraphs:
        match = _LABEL.match(text)
        para = _text(text[match.end() :] if match else text)
        if match:
            para.insert(0, nodes.strong(text=match.group(1).capitalize() + ": "))
        out.append(para)
    return out


class NumropeCli(SphinxDirective):
    has_content = False

    def _section(self, title, name):
        section = nodes.section(ids=[nodes.make_id(f"cli-{name}")], names=[nodes.fully_normalize_name(title)])
        section += nodes.title(text=title)
        return section

    def run(self):
        from numrope.cli import build_parser

        parser = build_parser()
        top = self._section("numrope", "numrope")
        top += nodes.paragraph(text=parser.description or "")
        top += nodes.literal_block(text=_usage(parser))
        top += _option_list(parser)
        top += _epilog(parser)
        sections = [top]
        for name, sub, summary in _subcommands(parser):
            section = self._section(f"numrope {name}", name)
            section += _text(_summary(name, sub, summary))
            section += nodes.literal_block(text=_usage(sub))
            section += _option_list(sub)
            section += _epilog(sub)
            if "exit status" not in (sub.epilog or ""):
                message = f"numrope {name}: its parser's epilog gives no exit status"
                logger.warning(message, location=self.get_location())
            sections.append(section)
        return sections


def setup(app):
    app.add_directive("numrope-cli", NumropeCli)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
