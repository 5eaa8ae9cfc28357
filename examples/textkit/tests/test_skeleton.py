import textkit


def test_the_package_imports_and_has_a_version() -> None:
    assert textkit.__version__ == "0.0.1"
