"""Names the registry uses: tags on versions and registered models, and the defaults."""

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
DB_FILENAME = "mlflow.db"
ARTIFACTS_DIRNAME = "mlartifacts"
DEFAULT_ALIAS = "production"

# Model version tags written by the Registrar.
TAG_BLESSED = "blessed"
TAG_TASK = "task"
TAG_PIPELINE = "pipeline"
TAG_PIPELINE_RUN_ID = "pipeline_run_id"
TAG_PUSHED_PATH = "pushed_model_path"
TAG_MODEL_URI = "trainer_model_uri"
TAG_GIT_COMMIT = "git_commit"
TAG_GIT_DIRTY = "git_dirty"
TAG_DATA_MD5 = "dvc_data_md5"
TAG_DATA_DIRTY = "dvc_data_dirty"
TAG_HYPERPARAMETERS = "hyperparameters"
TAG_SLICE_METRICS = "slice_metrics"
TAG_MLMD_STORE = "mlmd.store"
METRIC_TAG_PREFIX = "metric."
MLMD_EXECUTION_TAG = "mlmd.{}_execution_id"
MLMD_ARTIFACT_TAG = "mlmd.{}_artifact_id"

HISTORY_TAG_PREFIX = "mlops.promotions."
# A registered model whose existence is the promote/rollback lock on a server (see _server_lock).
LOCK_MODEL_SUFFIX = ".mlops-lock"

# Registry tag values may hold 100,000 characters; keep the promotion history well below that.
MAX_HISTORY_ENTRIES = 400
LOCK_TIMEOUT_S = 60.0
# A server lock older than this was left by a crashed process and is broken.
STALE_LOCK_S = 600.0

# Where the statistics of the data a version was trained on live (StatisticsGen's output): the drift
# baseline of the runs that compare against this version.
TAG_STATISTICS_URI = "statistics_uri"
# The version a candidate was compared against when it was blessed ("census v3", or "none").
TAG_BASELINE = "baseline_version"
# Infra validation (components.infra_validator): "true" when the SavedModel served in a fresh process
# passed every check; the checks' numbers (latencies) as JSON.
TAG_INFRA_BLESSED = "infra_blessed"
TAG_INFRA_VALIDATION = "infra_validation"
# The seed the Trainer used (models.common.training_info), and whether TF op determinism was on.
TAG_SEED = "seed"
TAG_DETERMINISTIC = "deterministic"
# SHA-256 over the pushed SavedModel's files (components.registry.evidence), written by the Registrar.
TAG_MODEL_DIGEST = "model_digest"
