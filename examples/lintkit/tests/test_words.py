from lintkit.words import longest, split_words


def test_split_words() -> None:
    assert split_words("a  bb ccc") == ["a", "bb", "ccc"]


def test_longest() -> None:
    assert longest(["a", "bbb", "cc"]) == "bbb"
    assert longest([]) is None
