#!/usr/bin/env bash
# Prepare a real Django project for sessiongate's Django tests (tests/django.rs, tests/user_store.rs;
# run through tests/support/django.rs).
#
#   tests/django/setup.sh OUT_DIR
#   tests/django/setup.sh --venv-only      (scripts/test: just make sure the virtualenv is there)
#
# 1. A Python virtualenv with Django 5.2 LTS, argon2-cffi, bcrypt, gunicorn and psycopg, at
#    ${DJANGO_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sessiongate-django-venv}; created
#    once and reused while its requirements stamp matches (a lock serialises concurrent runs).
# 2. OUT_DIR: a copy of tests/django/project/ with a migrated SQLite database (OUT_DIR/db.sqlite3)
#    whose users were created by Django itself, each password hashed with a different hasher.
#
# Prints `venv=PATH` and `python=PATH` as its last lines. Fails loudly (non-zero) when Python,
# the virtualenv or the package installation fails: the tests are never skipped.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: tests/django/setup.sh OUT_DIR | --venv-only}
venv=${DJANGO_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sessiongate-django-venv}
requirements=("django>=5.2,<5.3" "argon2-cffi" "bcrypt" "gunicorn>=22" "psycopg[binary]>=3.1")
stamp="$venv/.sessiongate-requirements"

command -v python3 >/dev/null || { echo "setup.sh: python3 is not installed (apt-get install python3 python3-venv)" >&2; exit 1; }
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "${requirements[*]}" ]] ||
   ! "$venv/bin/python" -c 'import django, argon2, bcrypt, gunicorn, psycopg; assert django.VERSION[:2] == (5, 2)' 2>/dev/null; then
    echo "setup.sh: creating the Django virtualenv at $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${requirements[@]}"
    "$venv/bin/python" -c 'import django, argon2, bcrypt, gunicorn, psycopg; assert django.VERSION[:2] == (5, 2), django.VERSION'
    printf '%s' "${requirements[*]}" >"$stamp"
fi
flock -u 9
exec 9>&-
if [[ "$out" == --venv-only ]]; then
    echo "venv=$venv"
    echo "python=$venv/bin/python"
    exit 0
fi

mkdir -p "$out"
cp -R "$here/project/." "$out/"
cd "$out"
export GATETEST_DB="$out/db.sqlite3"
"$venv/bin/python" manage.py migrate --noinput -v 0
"$venv/bin/python" manage.py shell --no-imports -c "$(cat create_users.py)"
echo "venv=$venv"
echo "python=$venv/bin/python"
