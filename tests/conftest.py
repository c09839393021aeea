import os

import pytest
from hypothesis import HealthCheck, settings

# No test reads the host's /etc/evpnd/evpnd.yaml: evpnd without --config reads EVPND_CONFIG
# instead when it is set (evpnd/cli.py), and this file exists nowhere. A test that wants a
# default file sets EVPND_CONFIG itself; subprocesses inherit this.
os.environ["EVPND_CONFIG"] = "/nonexistent/evpnd-tests/evpnd.yaml"

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
# A long fuzzing run by hand: HYPOTHESIS_PROFILE=fuzz ./scripts/test -k fuzz
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test module that uses the namespace helpers (tests/netns.py) must mark its tests `lab`,
    or `pytest -m "not lab"` would start namespaces and daemons in the quick loop."""
    unmarked = sorted(
        {
            item.module.__name__
            for item in items
            if isinstance(item, pytest.Function)
            and item.get_closest_marker("lab") is None
            and any(
                getattr(value, "__module__", None) in ("tests.netns", "benchmarks.restart")
                for value in vars(item.module).values()
            )
        }
    )
    if unmarked:
        raise pytest.UsageError(
            f"these modules use tests/netns.py but do not mark their tests lab: {unmarked}"
        )
