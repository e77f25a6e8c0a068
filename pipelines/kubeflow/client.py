"""The Kubeflow Pipelines API: check the endpoint once, upload a package, start a run."""
from __future__ import annotations

import contextlib
import datetime
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from pipelines.kubeflow import KubeflowError
from pipelines.kubeflow.compiler import read_package

HEALTHZ_PATH = "/apis/v2beta1/healthz"


def _reason(exc: BaseException) -> str:
    """A short reason for a connection failure ('connection refused', 'timed out', ...)."""
    import urllib3

    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 1.x: test it first.
    if not isinstance(exc, urllib3.exceptions.NewConnectionError) and isinstance(
        exc, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError)
    ):
        return "timed out"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {str(exc).splitlines()[0]}"
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if m:
        return m.group(1).strip().lower()
    return text.splitlines()[0] if text else type(exc).__name__


_CREDENTIALS_HINT = "pass a valid token with --token or $MLOPS_KFP_TOKEN, or a session cookie with --cookie or $MLOPS_KFP_COOKIE"


def _auth_headers(token: Optional[str], cookie: Optional[str] = None) -> Dict[str, str]:
    """Bearer token and/or session cookie (e.g. `authservice_session=...` of Kubeflow's gateway)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if cookie:
        headers["Cookie"] = cookie
    return headers


def check_endpoint(host: str, token: Optional[str] = None, timeout: float = 10.0, *,
                   cookie: Optional[str] = None, namespace: Optional[str] = None) -> None:
    """One GET of the KFP healthz endpoint; raises KubeflowError with a one-line reason.

    kfp.Client retries its own first request for ~25 s on errors, so the reachability and
    credential check is done here, once, with a timeout. A multi-user backend (healthz
    `multi_user`) needs a namespace: it refuses experiments without one.
    """
    import urllib3

    if not re.match(r"^https?://[^/\s]+", host or ""):
        raise KubeflowError(f"--host must be an http(s) URL such as http://localhost:8080, got {host!r}")
    url = host.rstrip("/") + HEALTHZ_PATH
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
    try:
        response = http.request("GET", url, headers=_auth_headers(token, cookie), redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        raise KubeflowError(f"cannot reach Kubeflow Pipelines at {host}: {_reason(exc)}") from None
    finally:
        http.clear()
    status = response.status
    if status in (401, 403):
        word = "Unauthorized" if status == 401 else "Forbidden"
        raise KubeflowError(
            f"Kubeflow Pipelines at {host} rejected the request (HTTP {status} {word}); {_CREDENTIALS_HINT}"
        )
    if 300 <= status < 400:
        raise KubeflowError(
            f"Kubeflow Pipelines at {host} redirected to {response.headers.get('Location', '?')} "
            "(a login page?); use the API address (e.g. a port-forward) or pass --token or --cookie"
        )
    if status != 200:
        raise KubeflowError(
            f"unexpected HTTP {status} from {url}; is {host} the Kubeflow Pipelines API "
            "(e.g. http://localhost:8080 after `kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`)?"
        )
    try:
        multi_user = bool(json.loads(response.data or b"{}").get("multi_user"))
    except (ValueError, AttributeError):
        multi_user = False
    if multi_user and not namespace:
        raise KubeflowError(
            f"Kubeflow Pipelines at {host} runs in multi-user mode: pass your profile's namespace with "
            "--namespace or $MLOPS_KFP_NAMESPACE (experiments and runs must belong to one)"
        )


def api_request(host: str, method: str, path: str, *, token: Optional[str] = None, cookie: Optional[str] = None,
                body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None, doing: str = "reading",
                timeout: float = 30.0) -> Tuple[Dict[str, str], bytes]:
    """One request to the KFP host (the v2beta1 API, or the UI's ML Metadata proxy) with the
    credentials; (response headers, body), or KubeflowError with one line: unreachable, rejected
    credentials, a redirect to a login page, or the server's own message."""
    import urllib3

    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
    try:
        response = http.request(method, host.rstrip("/") + path, body=body, redirect=False,
                                headers={**_auth_headers(token, cookie), **(headers or {})})
    except urllib3.exceptions.HTTPError as exc:
        raise KubeflowError(f"cannot reach Kubeflow Pipelines at {host} while {doing}: {_reason(exc)}") from None
    finally:
        http.clear()
    status = response.status
    if status in (401, 403):
        raise KubeflowError(f"Kubeflow Pipelines at {host} rejected the request while {doing} (HTTP {status}); "
                            f"{_CREDENTIALS_HINT}")
    if 300 <= status < 400:
        raise KubeflowError(f"Kubeflow Pipelines at {host} redirected to {response.headers.get('Location', '?')} "
                            "(a login page?); use the API address (e.g. a port-forward) or pass --token or --cookie")
    if status != 200:
        raise KubeflowError(f"Kubeflow Pipelines refused {doing} (HTTP {status}): {_server_message(response.data)}")
    return dict(response.headers), response.data


def _api_error(exc: BaseException, host: str, doing: str) -> KubeflowError:
    """One-line KubeflowError for an ApiException (or connection error) from kfp's client."""
    status = getattr(exc, "status", None)
    if status is None:
        return KubeflowError(f"cannot reach Kubeflow Pipelines at {host} while {doing}: {_reason(exc)}")
    if status in (401, 403):
        return KubeflowError(
            f"Kubeflow Pipelines at {host} rejected the request while {doing} (HTTP {status}); {_CREDENTIALS_HINT}"
        )
    message = _server_message(getattr(exc, "body", None)) or " ".join(str(getattr(exc, "reason", "") or "").split())
    return KubeflowError(f"Kubeflow Pipelines refused {doing} (HTTP {status}): {message[:500]}")


def _server_message(body) -> str:
    """The message of an API error body ({"message": ...} or {"error": ...}), on one line."""
    message = ""
    if body:
        try:
            data = json.loads(body)
            message = data.get("message") or data.get("error") or ""
        except (ValueError, AttributeError):
            message = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    return " ".join(str(message or "").split())[:500]


# ---- schedules: KFP's ScheduledWorkflow controller parses `cron` with robfig/cron v1 `cron.Parse`
# (backend/src/crd/controller/scheduledworkflow/util/cron_schedule.go): six fields, seconds first
# (the day-of-week field may be left off), or a descriptor such as @daily or "@every 1h30m"; times in UTC.

CRON_FIELDS = (  # name, lowest, highest, names allowed
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


def _cron_value(text: str, low: int, names) -> int:
    if names and text.lower() in names:
        return names.index(text.lower()) + low
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number" + (f" or one of {', '.join(names)}" if names else ""))
    return int(text)


def _check_cron_field(text: str, name: str, low: int, high: int, names) -> None:
    for part in text.split(","):
        where = f"{name} field {text!r}"
        if not part:
            raise KubeflowError(f"invalid cron schedule: empty list item in the {where}")
        span, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) < 1):
            raise KubeflowError(f"invalid cron schedule: step {step!r} in the {where} must be a positive integer")
        if span in ("*", "?"):
            continue
        first, dash, last = span.partition("-")
        try:
            bounds = [_cron_value(first, low, names)] + ([_cron_value(last, low, names)] if dash else [])
        except ValueError as exc:
            raise KubeflowError(f"invalid cron schedule: {exc} in the {where}") from None
        for value in bounds:
            if not low <= value <= high:
                hint = " (0 or SUN is Sunday)" if name == "day of week" else ""
                raise KubeflowError(f"invalid cron schedule: {value} is outside {low}-{high} in the {where}{hint}")
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            raise KubeflowError(f"invalid cron schedule: range {span!r} runs backwards in the {where}")


def kfp_cron(expression: str) -> str:
    """The cron expression KFP should get, validated (KubeflowError with the reason otherwise).

    Six fields (seconds first) or a descriptor are KFP's own form and pass unchanged. Five fields are
    read as standard cron (minute hour day-of-month month day-of-week) and get a leading "0" for the
    seconds: given to KFP as they are, they would be read with seconds first ("0 3 * * *" would run
    every hour at minute 3, not daily at 03:00)."""
    text = " ".join((expression or "").split())
    if not text:
        raise KubeflowError("invalid cron schedule: empty expression")
    if text.startswith("@"):
        word, _, rest = text.partition(" ")
        if word == "@every" and _GO_DURATION.match(rest or ""):
            return text
        if word in CRON_DESCRIPTORS and not rest:
            return text
        raise KubeflowError(f"invalid cron schedule {expression!r}: descriptors are {', '.join(CRON_DESCRIPTORS)} "
                            f"or '@every <duration>' such as '@every 6h'")
    fields = text.split(" ")
    if len(fields) == 5:
        fields = ["0"] + fields
    if len(fields) != 6:
        raise KubeflowError(f"invalid cron schedule {expression!r}: expected 5 fields (minute hour day-of-month "
                            f"month day-of-week) or KFP's 6 (seconds first), found {len(fields)}")
    for value, (name, low, high, names) in zip(fields, CRON_FIELDS):
        _check_cron_field(value, name, low, high, names)
    return " ".join(fields)


def _pipeline_id(client, name: str, namespace: Optional[str]) -> Optional[str]:
    """The id of the pipeline called `name` in `namespace` (shared pipelines without one); kfp's
    get_pipeline_id looks among shared pipelines only."""
    flt = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})
    found = client.list_pipelines(filter=flt, namespace=namespace).pipelines or []
    if len(found) > 1:
        raise ValueError(f"several pipelines are named {name!r}; delete all but one")
    return found[0].pipeline_id if found else None


@dataclass(frozen=True)
class SubmitResult:
    pipeline_id: str
    version_id: str
    experiment_id: str
    run_id: str
    run_url: str
    # With a schedule: the recurring run created instead of a run (run_id is then "").
    recurring_run_id: str = ""
    schedule: str = ""


def submit_package(
    package: Path,
    *,
    host: str,
    experiment: str,
    run_name: str,
    version_name: Optional[str] = None,
    token: Optional[str] = None,
    schedule: Optional[str] = None,
    cookie: Optional[str] = None,
    namespace: Optional[str] = None,
) -> SubmitResult:
    """Upload `package` as a new version of its pipeline (creating the pipeline if needed) and start
    a run of that version in `experiment` with the package's pipeline root; with `schedule` (a cron
    expression, see kfp_cron), create a recurring run of that version on that schedule instead.

    namespace: the Kubeflow profile (multi-user mode) that the pipeline and experiment are created
    in; runs and recurring runs belong to their experiment's namespace (the API server takes it from
    the experiment, run_server.go/job_server.go GetValidExperimentNamespacePair). cookie: a session
    cookie sent on every request, like the bearer token."""
    import kfp
    import kfp_server_api
    import urllib3

    from pipelines.kubeflow import steps

    cron = kfp_cron(schedule) if schedule is not None else None
    compiled = read_package(package)
    steps.preflight(compiled.pipeline_spec, compiled.platform_spec)  # what the backend would refuse
    check_endpoint(host, token, cookie=cookie, namespace=namespace)
    name = compiled.name
    version_name = version_name or f"{name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    step = "connecting"
    try:
        # A namespace set here also stops kfp.Client from guessing one (an extra healthz request).
        client = kfp.Client(host=host, existing_token=token, cookies=cookie, namespace=namespace or "kubeflow")
        step = "looking up the pipeline"
        pipeline_id = _pipeline_id(client, name, namespace)
        if pipeline_id is None:
            step = "uploading the pipeline"
            pipeline = client.upload_pipeline(str(package), pipeline_name=name, description=f"mlops {name}",
                                              namespace=namespace)
            pipeline_id = pipeline.pipeline_id
            versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
            version_id = versions.pipeline_versions[0].pipeline_version_id
        else:
            step = "uploading the pipeline version"
            version = client.upload_pipeline_version(
                str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id
            )
            version_id = version.pipeline_version_id
        step = "creating the experiment"
        experiment_obj = client.create_experiment(experiment, namespace=namespace)
        if cron is not None:
            step = "creating the recurring run"
            recurring = client.create_recurring_run(
                experiment_id=experiment_obj.experiment_id,
                job_name=run_name,
                description=f"mlops {name} on the schedule {cron} (UTC)",
                cron_expression=cron,
                # One run at a time, and no backfill of the intervals missed while paused.
                max_concurrency=1,
                no_catchup=True,
                pipeline_id=pipeline_id,
                version_id=version_id,
                pipeline_root=compiled.pipeline_root or None,
            )
            return SubmitResult(
                pipeline_id=pipeline_id, version_id=version_id, experiment_id=experiment_obj.experiment_id,
                run_id="", run_url=f"{host.rstrip('/')}/#/recurringrun/details/{recurring.recurring_run_id}",
                recurring_run_id=recurring.recurring_run_id, schedule=cron,
            )
        step = "starting the run"
        with contextlib.redirect_stdout(io.StringIO()):  # kfp prints its own "Run details" line
            run = client.run_pipeline(
                experiment_id=experiment_obj.experiment_id,
                job_name=run_name,
                pipeline_id=pipeline_id,
                version_id=version_id,
                pipeline_root=compiled.pipeline_root or None,
            )
    except (kfp_server_api.ApiException, urllib3.exceptions.HTTPError) as exc:
        raise _api_error(exc, host, step) from None
    except ValueError as exc:  # e.g. several pipelines with the same name
        raise KubeflowError(f"Kubeflow Pipelines at {host}: {exc} (while {step})") from None
    return SubmitResult(
        pipeline_id=pipeline_id,
        version_id=version_id,
        experiment_id=experiment_obj.experiment_id,
        run_id=run.run_id,
        run_url=f"{host.rstrip('/')}/#/runs/details/{run.run_id}",
    )
