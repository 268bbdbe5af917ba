#!/usr/bin/env bash
# Build the one-folder app with PyInstaller and prove it works: dist/sd-desktop/sd-desktop.
#
#   packaging/build_app.sh            # uses (or creates) .venv via `make setup`
#
# Installs PyInstaller into the venv if missing, builds from packaging/sd-desktop.spec,
# then runs the frozen binary's --self-test (one picture, end to end, off-screen).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
[ -x "$PY" ] || make setup
"$PY" -m PyInstaller --version >/dev/null 2>&1 || "$PY" -m pip install --quiet "pyinstaller>=6.10"

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/sd-desktop.spec
built=$(date +%s)

APP=dist/sd-desktop
echo "Built $APP in $((built - start)) s; size $(du -sh "$APP" | cut -f1)"

# The frozen app must run without the venv: start it with a clean environment.
env -i HOME="${HOME}" PATH=/usr/bin:/bin LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
    "$APP/sd-desktop" --self-test
echo "Self-test of the frozen app passed. Add it to your menu with:"
echo "  $APP/sd-desktop --install-desktop-entry"
