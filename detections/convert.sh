#!/usr/bin/env bash
# Validates the Sigma rules and converts them with pySigma (detections/convert.py).
#   bash detections/convert.sh            # validate + rewrite detections/converted/
#   bash detections/convert.sh --check    # validate + fail when detections/converted/ is stale (CI)
# pySigma and its Elasticsearch backend are installed from PyPI, at the versions pinned in
# requirements.txt, into a virtualenv under the cache directory (reused while requirements.txt is unchanged).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${AC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authentik-collector}"
hash="$(sha256sum "$here/requirements.txt" | cut -c1-12)"
venv="$cache/pysigma-$hash"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  command -v "$python" >/dev/null || { echo "convert.sh: $python not found (Python 3.9+ is needed for pySigma)" >&2; exit 2; }
  echo "convert.sh: installing pySigma into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"
  touch "$venv/.complete"
fi
exec "$venv/bin/python" "$here/convert.py" "$@"
