"""Reading runs back, wherever they ran: one RunSource interface (base.py) over the local ML
Metadata store (local.py) or a Kubeflow Pipelines backend and its object store (kubeflow.py).
The source is chosen once, by where the runs are (a home directory or an http(s):// KFP host, as
MLflow picks a store by URI scheme); `mlops runs/slices/report`, the report and the run summary
only ever see RunRecords."""
from __future__ import annotations

from typing import Optional

from pipelines.runs.base import (
    ABSENT, LEGEND, STATE_SYMBOLS, UNFINISHED, InspectError, RunSource, columns_for, format_duration, symbols,
)


def open_source(where: Optional[str] = None, *, namespace: Optional[str] = None, token: Optional[str] = None,
                cookie: Optional[str] = None, home: Optional[str] = None) -> RunSource:
    """The runs at `where`: an http(s):// Kubeflow Pipelines host (with its namespace and
    credentials; downloads go under `home`'s cache), else a local home directory (default
    $MLOPS_HOME or ./.mlops)."""
    from pipelines.layout import LocalLayout

    if where and where.startswith(("http://", "https://")):
        from pipelines.runs.kubeflow import KubeflowSource

        return KubeflowSource(where, namespace=namespace, token=token, cookie=cookie,
                              layout=LocalLayout.resolve(home))
    from pipelines.runs.local import LocalSource

    return LocalSource(LocalLayout.resolve(where or home))


__all__ = ["ABSENT", "LEGEND", "STATE_SYMBOLS", "UNFINISHED", "InspectError", "RunSource", "columns_for",
           "format_duration", "open_source", "symbols"]
