"""Build the installable plugin zip: rssgl_qgis/ plus metadata.txt, resources/, i18n/*.qm, README, LICENSE.

Only what the plugin needs at run time goes in: no tests, caches, venv or benchmarks.
"""

from __future__ import annotations

import argparse
import os
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = "rssgl_qgis"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "deps"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".orig", ".rej", ".tmp")


def plugin_files() -> list[tuple[str, str]]:
    """(source path, path inside the zip) of every file shipped."""
    files: list[tuple[str, str]] = []

    def walk(source_dir: str, zip_dir: str, suffixes: tuple[str, ...] | None = None) -> None:
        for folder, dirs, names in os.walk(source_dir):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(names):
                if name.endswith(SKIP_SUFFIXES) or name.startswith("."):
                    continue
                if suffixes and not name.endswith(suffixes):
                    continue
                source = os.path.join(folder, name)
                relative = os.path.relpath(source, source_dir)
                files.append((source, f"{zip_dir}/{relative}"))

    walk(os.path.join(ROOT, PLUGIN), PLUGIN)
    walk(os.path.join(ROOT, "resources"), f"{PLUGIN}/resources")
    walk(os.path.join(ROOT, "i18n"), f"{PLUGIN}/i18n", suffixes=(".qm",))
    for name in ("metadata.txt", "README.md", "LICENSE"):
        if os.path.exists(os.path.join(ROOT, name)):
            files.append((os.path.join(ROOT, name), f"{PLUGIN}/{name}"))
    return files


def build(out: str) -> str:
    """Write the zip atomically (temporary name, then rename) and return its path."""
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".part"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, target in plugin_files():
            archive.write(source, target)
    os.replace(tmp, out)
    return out


def link_dev(plugins_dir: str, profile_plugins: str | None = None) -> str:
    """A developer install: ``plugins_dir/rssgl_qgis`` laid out like the zip, made of symlinks to the
    working tree (edits take effect at the next QGIS start), optionally linked into a QGIS profile's
    ``python/plugins``. Idempotent: links already there are replaced. Returns the plugin folder."""
    folder = os.path.join(os.path.abspath(plugins_dir), PLUGIN)
    os.makedirs(folder, exist_ok=True)
    links = {name: os.path.join(ROOT, PLUGIN, name) for name in os.listdir(os.path.join(ROOT, PLUGIN))
             if name not in SKIP_DIRS and not name.endswith(SKIP_SUFFIXES)}
    links.update({name: os.path.join(ROOT, name) for name in ("metadata.txt", "resources", "i18n", "LICENSE")})
    for name, target in links.items():
        path = os.path.join(folder, name)
        if os.path.islink(path):
            os.remove(path)
        if os.path.exists(target) and not os.path.exists(path):
            os.symlink(target, path)
    if profile_plugins:
        os.makedirs(profile_plugins, exist_ok=True)
        installed = os.path.join(profile_plugins, PLUGIN)
        if os.path.islink(installed):
            os.remove(installed)
        if os.path.exists(installed):
            raise SystemExit(f"{installed} exists and is not a link (an installed zip?); remove it first.")
        os.symlink(folder, installed)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=os.path.join(ROOT, "build", f"{PLUGIN}.zip"))
    parser.add_argument("--dev-link", metavar="PLUGINS_DIR",
                        help="instead of a zip: a developer install of symlinks in PLUGINS_DIR/rssgl_qgis")
    parser.add_argument("--profile-plugins", metavar="DIR",
                        help="with --dev-link: also link it into this QGIS profile plugins folder")
    args = parser.parse_args()
    if args.dev_link:
        print(link_dev(args.dev_link, args.profile_plugins))
    else:
        print(build(args.out))


if __name__ == "__main__":
    main()
