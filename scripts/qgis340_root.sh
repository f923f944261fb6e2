#!/usr/bin/env bash
# Kept for older notes and habits: the QGIS 3.40 root of scripts/qgis_root.sh (same commands: build, test, shell,
# probe-pypi-torch). `make test-qgis340` calls scripts/qgis_root.sh directly.
exec env QGIS_ROOT=3.40 bash "$(dirname "$0")/qgis_root.sh" "$@"
