"""`one_line`: whitespace runs to single spaces, cut to a length, with or without a mark."""

from shared.text import one_line


def test_whitespace_becomes_single_spaces() -> None:
    assert one_line("  rollout\tfailed:\n\n Crash  ") == "rollout failed: Crash"
    assert one_line(KeyError("target")) == "'target'"
    assert one_line("") == ""


def test_cut_to_the_limit() -> None:
    assert one_line("a b c d", 5) == "a b c"
    assert one_line("a b c d", 7) == "a b c d"
    assert one_line("a  b", 3) == "a b"  # counted after the spaces are folded


def test_a_cut_mark_counts_towards_the_limit() -> None:
    assert one_line("abcdefgh", 5, cut="…") == "abcd…"
    assert one_line("abcde", 5, cut="…") == "abcde"
