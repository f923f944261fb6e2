"""Translatable sentences outside Qt: the marker pylupdate5 extracts and the message they build."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONTEXT", "Message", "QT_TRANSLATE_NOOP"]

#: Translation context of every installer sentence (the .ts files' "TorchInstaller").
CONTEXT = "TorchInstaller"


def QT_TRANSLATE_NOOP(context: str, source: str) -> str:  # noqa: N802 - the name pylupdate5 looks for
    """Mark ``source`` for extraction; it is translated where it is shown (gui/installer.py)."""
    return source


@dataclass(frozen=True)
class Message:
    """One user sentence: its English source (the translation key) and the values for its {0}, {1}..."""

    source: str
    args: tuple = ()

    def text(self, translate=None) -> str:
        """The sentence, through ``translate(context, source)`` when given (QCoreApplication.translate)."""
        template = translate(CONTEXT, self.source) if translate else self.source
        return template.format(*self.args)
