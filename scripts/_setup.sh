# Sourced by scripts/*: create .venv with the project and its dev dependencies, and make sure a
# supported Node.js (22+, for CDK synthesis through jsii) is on PATH. Safe to re-run.
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Nudge needs Python 3.11 or newer (found $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
# NUDGE_EXTRAS: what to install. The demo needs only the embedded AWS endpoint ("local"); the tests
# need everything ("dev": CDK, jsii, cdk-nag, the linters), and a dev install serves the demo too.
EXTRAS="${NUDGE_EXTRAS:-dev}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
installed() { [ -f "$VENV/.nudge-installed-$1" ] && [ ! pyproject.toml -nt "$VENV/.nudge-installed-$1" ]; }
# The installer: uv (Astral's, from PyPI, put into the venv itself) resolves and installs in parallel,
# several times faster than pip here; pip is the fallback when uv cannot be had or fails, and
# NUDGE_INSTALLER=pip asks for it. Both keep their download caches (~/.cache/uv, ~/.cache/pip)
# between runs, and a venv that is up to date with pyproject.toml is not touched at all.
with_uv() {
  [ "${NUDGE_INSTALLER:-uv}" = uv ] || return 1
  [ -x "$VENV/bin/uv" ] || "$VENV/bin/python" -m pip install --quiet uv >/dev/null 2>&1 || return 1
  # The system's certificates, as pip uses them (uv otherwise trusts only its own built-in roots),
  # and pip's own bundle when one is configured.
  if [ -n "${PIP_CERT:-}" ] && [ -z "${SSL_CERT_FILE:-}" ]; then export SSL_CERT_FILE="$PIP_CERT"; fi
  UV_NATIVE_TLS=1 "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" "$@"
}
if ! installed "$EXTRAS" && ! installed dev; then
  echo "== installing nudge and its dependencies ($EXTRAS) into $VENV"
  if ! with_uv -e ".[$EXTRAS]"; then
    [ "${NUDGE_INSTALLER:-uv}" = uv ] && echo "   (uv unavailable or failed: installing with pip)"
    "$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]"
  fi
  touch "$VENV/.nudge-installed-$EXTRAS"
fi
if [ "${NUDGE_NODE:-1}" = 0 ]; then
  return 0 2>/dev/null || exit 0  # the demo synthesizes nothing: no Node.js needed
fi

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ -x .tools/node_modules/.bin/node ]; then
  export PATH="$PWD/.tools/node_modules/.bin:$PATH"
elif [ "$(node_major)" -lt 22 ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "== Node.js $(node --version 2>/dev/null || echo missing) is not supported by jsii: installing node@22 into .tools/"
    npm install --silent --no-audit --no-fund --prefix .tools node@22 >/dev/null
    export PATH="$PWD/.tools/node_modules/.bin:$PATH"
  else
    echo "warning: Node.js 22+ is needed for CDK synthesis and was not found (and npm is missing)." >&2
  fi
fi
