"""Kubeflow Pipelines: resources and GPU scheduling (`resources`), the target cluster's node pools,
registry URL and KFP version (`cluster`), compiling a task's pipeline into a package (`compiler`),
and the KFP API client (`client`)."""


class KubeflowError(RuntimeError):
    """A problem to report as one line (unreachable API, rejected credentials, bad package)."""
