"""Fixtures of the pipelines tests: runs read back from the shared census pipeline run
(`census_run`, tests/conftest.py)."""
import pytest

from pipelines import lineage, nodes
from pipelines.layout import LocalLayout
from pipelines.runs.local import LocalSource


def census_runs(home):
    """Run records of the census fixture's pipeline, oldest first."""
    store = LocalSource(LocalLayout.resolve(str(home))).store
    pipeline = nodes.pipeline_name("census")
    return [lineage.load_run(store, pipeline, r) for r in reversed(lineage.list_run_ids(store, pipeline))]


@pytest.fixture(scope="module")
def first_run(census_run):
    """(home, RunRecord) of the fixture's first run: blessed, pushed, no baseline."""
    _, home, status = census_run
    assert status == 0
    return home, census_runs(home)[0]
