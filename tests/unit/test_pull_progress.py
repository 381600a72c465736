"""Bytes copied, read from skopeo's progress bars as drawn into a terminal (captured output)."""

from toolbx_arch.skopeo import _BarReader

D1, D2 = "e7d16d38c559" + "0" * 52, "90bfa056a673" + "1" * 52


def test_bars_and_done_lines_add_up_to_the_bytes_copied():
    r = _BarReader({f"sha256:{D1}": 117, f"sha256:{D2}": 59_900_000})
    assert r.feed("Getting image source signatures\r\n") == 0
    assert r.feed("Copying blob e7d16d38c559 [=====] 117.0b / 117.0b\r\n"
                  "Copying blob 90bfa056a673 [==>--] 11.5MiB / 57.1MiB\r\n") == 117 + int(11.5 * 2 ** 20)
    # redraws move the cursor up and clear; a line may arrive in pieces
    assert r.feed("\x1b[2A\x1b[JCopying blob e7d16d38c559 done  \r\nCopying blob 90bfa056a673 [====>-] 38.") \
        == 117 + int(11.5 * 2 ** 20)
    assert r.feed("7MiB / 57.1MiB\r\n") == 117 + int(38.7 * 2 ** 20)
    assert r.feed("\x1b[2A\x1b[JCopying blob e7d16d38c559 done\r\nCopying blob 90bfa056a673 done  \r\n"
                  "Copying config 8e0a1551e3 [====] 596.0b / 596.0b\r\n") == 117 + 59_900_000


def test_a_skipped_blob_counts_as_copied():
    r = _BarReader({f"sha256:{D1}": 5000})
    assert r.feed("Copying blob e7d16d38c559 skipped: already exists\n") == 5000
