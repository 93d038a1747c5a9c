"""The one base of rtcheck's coded words (enums of protocol files, check kinds, ...)."""

from __future__ import annotations

import enum

__all__ = ["CodedWord"]


class CodedWord(str, enum.Enum):
    """A coded word: a ``str`` whose text is the word itself, so comparisons with plain strings, f-strings,
    JSON and YAML give the word (``str()`` is the value, not ``Class.MEMBER``, on every Python rtcheck
    supports)."""

    def __str__(self) -> str:
        return str(self.value)
