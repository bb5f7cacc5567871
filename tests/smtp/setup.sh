#!/usr/bin/env bash
# A real SMTP server for sessiongate's mail tests (tests/api/mail.rs): Python's aiosmtpd from
# PyPI, in a virtualenv at
#   ${SESSIONGATE_SMTP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sessiongate-smtp-venv}
# created once and reused while its requirements stamp matches (a lock serialises concurrent
# runs). Prints `python=PATH` as its last line. Fails loudly (non-zero) when Python, the
# virtualenv or the installation fails: the tests are never skipped.
#
# The tests then run, with PYTHONPATH=tests/smtp:
#   $python -m aiosmtpd -n -l 127.0.0.1:PORT -c outbox.Outbox DIR
# which stores every received message as DIR/<n>.eml (see outbox.py).
set -euo pipefail

venv=${SESSIONGATE_SMTP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sessiongate-smtp-venv}
requirements=("aiosmtpd>=1.4,<2")
stamp="$venv/.sessiongate-requirements"

command -v python3 >/dev/null || { echo "setup.sh: python3 is not installed (apt-get install python3 python3-venv)" >&2; exit 1; }
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "${requirements[*]}" ]] ||
   ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    echo "setup.sh: creating the SMTP test virtualenv at $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${requirements[@]}"
    "$venv/bin/python" -c 'import aiosmtpd'
    printf '%s' "${requirements[*]}" >"$stamp"
fi
flock -u 9
exec 9>&-
echo "python=$venv/bin/python"
