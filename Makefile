# rssgl-qgis developer commands. Quick start: `make setup && make test`, then `make demo`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := qgis python3-qgis qgis-providers python3-gdal python3-venv xvfb pyqt5-dev-tools qttools5-dev-tools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SITE := $(shell ls -d $(VENV)/lib/python3*/site-packages 2>/dev/null | head -1)
# qgis_process runs Debian's python: let it see the venv's torch/safetensors.
QGIS_ENV := QT_QPA_PLATFORM=offscreen PYTHONPATH=$(CURDIR)/$(SITE):$(CURDIR)

.PHONY: setup test pytest test-qgis344 test-qgis340 lint demo package install-dev transup transcompile bench-train bench-infer clean

setup: ## install QGIS 3.22 + GDAL (apt, skipped when present), .venv and pinned Python packages
	@if dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | grep -vq "install ok installed" \
	    || [ "$$(dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | wc -l)" -ne "$(words $(APT_PACKAGES))" ]; then \
	  echo "Installing Debian packages: $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $(APT_PACKAGES); \
	else echo "Debian packages already installed."; fi
	@[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	@$(PY) -c "import torch, qgis.core, osgeo; print('torch', torch.__version__, '| QGIS', qgis.core.Qgis.QGIS_VERSION)"

lint: ## ruff + the Qt 6 / QGIS 4 check (docs/QGIS4.md)
	$(VENV)/bin/ruff check .
	$(PY) scripts/qt6_check.py

# The Processing dialog screenshots run in a process of their own: after the rest of the suite, showing the
# Train dialog crashed QGIS 3.22 with SIGFPE in 2 of 13 full runs (never in 15 runs on its own; cause not found).
SCREENSHOT_TESTS := tests/qgis/test_screenshots_processing.py
test: lint pytest ## ruff + the whole pytest suite (engine, I/O, headless QGIS, GUI under Xvfb)

PYTEST_ARGS ?=
pytest: ## the whole pytest suite under Xvfb, no lint (also what test-qgis344/340 run inside their roots)
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m pytest $(PYTEST_ARGS) --ignore=$(SCREENSHOT_TESTS)
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m pytest $(PYTEST_ARGS) $(SCREENSHOT_TESTS)

# QGIS 3.44 LTR (trixie-backports) and 3.40 LTR (trixie) in debootstrapped Debian 13 roots (Python 3.13, numpy 2),
# one per QGIS, cached under RSSGL_ROOT_CACHE (built once, rebuilt only when missing or broken; see
# scripts/qgis_root.sh and docs/QGIS_ROOTS.md). Both need root: debootstrap, chroot, mount.
RSSGL_ROOT_CACHE ?= $(HOME)/.cache/rssgl-qgis
QGIS_ROOT_RUN = RSSGL_ROOT_CACHE=$(RSSGL_ROOT_CACHE) HOST_PIP="$(PY) -m pip" PYTEST_ARGS="$(PYTEST_ARGS)" \
	bash scripts/qgis_root.sh test
test-qgis344: ## the whole suite on QGIS 3.44 LTR in a Debian 13 root with trixie-backports (what .ci/run runs)
	QGIS_ROOT=3.44 $(QGIS_ROOT_RUN)

test-qgis340: ## the whole suite on QGIS 3.40 LTR in a Debian 13 root
	QGIS_ROOT=3.40 $(QGIS_ROOT_RUN)

demo: ## synthetic scene -> Train -> Classify -> Assess through qgis_process
	$(QGIS_ENV) $(PY) scripts/demo.py --out out/demo

package: transcompile ## build/rssgl_qgis.zip, installable with Plugins > Install from ZIP
	$(PY) scripts/package.py --out build/rssgl_qgis.zip

# QGIS's default profile; `make install-dev QGIS_PROFILE=` links nothing into a profile.
QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
install-dev: transcompile ## build/plugins/rssgl_qgis (symlinks to this tree) for QGIS_PLUGINPATH, linked into QGIS_PROFILE
	$(PY) scripts/package.py --dev-link build/plugins $(if $(QGIS_PROFILE),--profile-plugins $(QGIS_PROFILE)/python/plugins)

transup: ## refresh i18n/*.ts from the sources
	pylupdate5 -noobsolete $$(find rssgl_qgis -name '*.py' | sort) -ts i18n/rssgl_qgis_de.ts i18n/rssgl_qgis_zh.ts

transcompile: ## build i18n/*.qm
	@for ts in i18n/*.ts; do [ -e "$$ts" ] && lrelease -silent "$$ts" -qm "$${ts%.ts}.qm" || true; done

bench-train:
	$(PY) benchmarks/bench_train.py

bench-infer:
	$(PY) benchmarks/bench_infer.py

clean:
	rm -rf build out .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
