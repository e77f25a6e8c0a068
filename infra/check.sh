#!/usr/bin/env bash
# Checks of the infrastructure code. Called by CI; runnable from any
# directory:  bash infra/check.sh
#
#   terraform fmt -check      (infra/terraform)
#   terraform init            (-backend=false, providers from a local filesystem mirror)
#   terraform validate
#   terraform test            (terraform/tests/*.tftest.hcl, mocked AWS provider)
#   kubectl kustomize         (every overlay under infra/k8s/overlays and infra/k8s/serving)
#   image_resolves.py         (the pipeline image's pins resolve from wheels for its
#                              platform; the only check that needs the package index,
#                              ~1.5 min; MLOPS_SKIP_IMAGE_RESOLVE=1 skips it offline)
#
# Provider mirror: $TF_PLUGIN_MIRROR, else /opt/tf-plugins, else the terraform
# checks that need providers are skipped. Nothing is written into the repo:
# the CLI config and TF_DATA_DIR live in a temp dir, and init runs with
# -lockfile=readonly against the committed .terraform.lock.hcl.
#
# Prints one line per check ending in "ok" or "FAILED", then
# "infra: N passed, M failed"; exits non-zero if any check failed.
set -euo pipefail

INFRA_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
TF_DIR="${INFRA_DIR}/terraform"
OVERLAYS_DIR="${INFRA_DIR}/k8s/overlays"
SERVING_DIR="${INFRA_DIR}/k8s/serving"

passed=0
failed=0

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/infra-check.XXXXXX")"
cleanup() { rm -rf -- "${WORK_DIR}"; }
trap cleanup EXIT

# run_check NAME CMD...: runs CMD with its output captured; prints the output
# only when the check fails. Returns CMD's success, so call it as a condition
# (`run_check ... || true`) to keep `set -e` from stopping the script.
run_check() {
    local name="$1"
    shift
    local log="${WORK_DIR}/check.log"
    if "$@" >"${log}" 2>&1; then
        echo "${name} ... ok"
        passed=$((passed + 1))
        return 0
    fi
    echo "${name} ... FAILED"
    sed 's/^/    /' "${log}"
    failed=$((failed + 1))
    return 1
}

skip() {
    echo "$1 ... SKIPPED: $2"
}

# ---------------------------------------------------------------- terraform --
if ! command -v terraform >/dev/null 2>&1; then
    skip "terraform" "terraform not installed"
else
    # Private CLI config + data dir for every terraform call: nothing is read
    # from ~/.terraformrc and nothing is written under infra/terraform.
    export TF_CLI_CONFIG_FILE="${WORK_DIR}/terraform.rc"
    export TF_DATA_DIR="${WORK_DIR}/tf-data"
    export TF_IN_AUTOMATION=1
    export TF_INPUT=0
    export CHECKPOINT_DISABLE=1
    : >"${TF_CLI_CONFIG_FILE}"

    run_check "terraform fmt -check -recursive" \
        terraform -chdir="${TF_DIR}" fmt -check -recursive -no-color || true

    mirror=""
    if [[ -n "${TF_PLUGIN_MIRROR:-}" ]]; then
        mirror="${TF_PLUGIN_MIRROR}"
    elif [[ -d /opt/tf-plugins ]]; then
        mirror="/opt/tf-plugins"
    fi

    if [[ -z "${mirror}" ]]; then
        skip "terraform init/validate/test" "no provider mirror (set TF_PLUGIN_MIRROR or provide /opt/tf-plugins)"
    elif [[ ! -d "${mirror}" ]]; then
        skip "terraform init/validate/test" "no provider mirror (TF_PLUGIN_MIRROR=${mirror} is not a directory)"
    else
        cat >"${TF_CLI_CONFIG_FILE}" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "${mirror}"
    include = ["registry.terraform.io/*/*"]
  }
}
EOF
        # The lock file is committed; never let a check rewrite it.
        lock_mode=()
        if [[ -f "${TF_DIR}/.terraform.lock.hcl" ]]; then
            lock_mode=(-lockfile=readonly)
        fi

        if run_check "terraform init -backend=false (mirror ${mirror})" \
            terraform -chdir="${TF_DIR}" init -backend=false -input=false -no-color \
            ${lock_mode[@]+"${lock_mode[@]}"}; then
            run_check "terraform validate" \
                terraform -chdir="${TF_DIR}" validate -no-color || true
            # Plan/apply of the whole stack against a mocked AWS provider.
            run_check "terraform test (mocked aws provider)" \
                terraform -chdir="${TF_DIR}" test -no-color || true
        else
            echo "terraform validate (not run: init failed) ... FAILED"
            echo "terraform test (not run: init failed) ... FAILED"
            failed=$((failed + 2))
        fi
    fi
fi

# ---------------------------------------------------------------- kustomize --
if ! command -v kubectl >/dev/null 2>&1; then
    skip "kubectl kustomize" "kubectl not installed"
else
    found=0
    for overlay in "${OVERLAYS_DIR}"/*/; do
        [[ -f "${overlay}kustomization.yaml" || -f "${overlay}kustomization.yml" || -f "${overlay}Kustomization" ]] || continue
        found=1
        name="$(basename -- "${overlay}")"
        run_check "kubectl kustomize k8s/overlays/${name}" \
            kubectl kustomize "${overlay}" || true
    done
    if [[ "${found}" -eq 0 ]]; then
        echo "kubectl kustomize (no overlay found in ${OVERLAYS_DIR}) ... FAILED"
        failed=$((failed + 1))
    fi
    # KServe overlays written by `mlops registry manifest` (k8s/serving/<name>/, incl. the
    # generated example); their KServe schema check is tests/pipelines/test_serving_manifest.py.
    for overlay in "${SERVING_DIR}"/*/; do
        [[ -f "${overlay}kustomization.yaml" ]] || continue
        name="$(basename -- "${overlay}")"
        run_check "kubectl kustomize k8s/serving/${name}" \
            kubectl kustomize "${overlay}" || true
    done
fi

# -------------------------------------------------------------------- image --
if [[ "${MLOPS_SKIP_IMAGE_RESOLVE:-0}" == "1" ]]; then
    skip "image install set resolves" "MLOPS_SKIP_IMAGE_RESOLVE=1"
elif ! command -v python3 >/dev/null 2>&1; then
    skip "image install set resolves" "python3 not installed"
else
    run_check "image install set resolves (cp310 manylinux wheels, package index)" \
        python3 "${INFRA_DIR}/image_resolves.py" || true
fi

echo "infra: ${passed} passed, ${failed} failed"
[[ "${failed}" -eq 0 ]]
