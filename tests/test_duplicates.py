from evpnd.local.duplicates import DuplicateDetector

MAC = bytes.fromhex("020000000001")


def test_five_moves_in_180_seconds_freeze_once() -> None:
    dad = DuplicateDetector()
    assert [dad.moved(100, MAC, t) for t in (0, 10, 20, 30)] == [False] * 4
    assert dad.moved(100, MAC, 40) is True
    assert dad.is_frozen(100, MAC)
    assert dad.moved(100, MAC, 50) is False  # logged once, not on every move after
    assert not dad.is_frozen(200, MAC)


def test_slow_moves_never_freeze() -> None:
    dad = DuplicateDetector()
    assert not any(dad.moved(100, MAC, t) for t in range(0, 2000, 100))
    dad.clear(100, MAC)
    assert not dad.is_frozen(100, MAC)
