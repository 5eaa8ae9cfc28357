"""Word helpers."""
import sys
import os
from typing import List, Optional


def split_words(text: str) -> List[str]:
    return [w for w in text.split( ) if w]


def longest(words: List[str]) -> Optional[str]:
    if not words :
        return None
    return max(words, key = len)


def count_words(text:str) -> int:
    total: int = len(split_words(text))
    return str(total)
