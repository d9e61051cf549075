#!/bin/sh
# Print the path of a Python >= 3.12 interpreter (Django 6.1 needs it), or exit 1.
# Order: $PYTHON, python3.13/python3.12/python3 on PATH, then pyenv's installed versions
# (pyenv shims only run with PYENV_VERSION set, so we call the real binaries directly).
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for c in "${PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$c" ] || continue
    p=$(command -v "$c" 2>/dev/null) || continue
    case "$p" in */.pyenv/shims/*) continue ;; esac
    if ok "$p"; then echo "$p"; exit 0; fi
done
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for p in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
    if ok "$p"; then echo "$p"; exit 0; fi
done
exit 1
