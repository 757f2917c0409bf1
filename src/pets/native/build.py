"""Build the compiled hot path: `python -m pets.native.build` (run by `make install` / `make native`).

The sources are copied to a scratch directory and compiled there with mypyc (shipped with mypy, a
dev dependency) and the C compiler, so no extension ever lands beside the sources in src/ (where
Python would prefer it to an edited .py). The result replaces build/native/ whole, manifest last.
Without a C compiler or Python's headers the build is skipped with a message: PETS runs pure Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from pets.native import (
    EXTENSION_SUFFIX,
    HOT_MODULES,
    MANIFEST,
    NATIVE_DIR,
    PACKAGE_DIR,
    mismatch,
    read_manifest,
    source_digest,
)

GROUP = "pets_native"  # the shared library's name (mypyc adds __mypyc)
SETUP = """\
from setuptools import setup
from mypyc.build import mypycify

setup(
    name="pets_native",
    package_dir={{"": "src"}},
    ext_modules=mypycify({paths!r}, opt_level="3", multi_file=True, group_name={group!r}),
)
"""
MYPY_CONFIG = """\
[mypy]
python_version = {python}
mypy_path = src
ignore_missing_imports = True
check_untyped_defs = True
"""


def missing_toolchain() -> str | None:
    """Why a C extension cannot be built here, or None."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        return f"no Python headers ({include}/Python.h)"
    return None


def up_to_date(native_dir: Path = NATIVE_DIR) -> bool:
    """build/native was compiled from the current sources, of these modules, for this Python."""
    manifest = read_manifest(native_dir)
    return (
        manifest is not None
        and mismatch(manifest) is None
        and set(manifest.get("modules", ())) >= set(HOT_MODULES)
    )


def build(native_dir: Path = NATIVE_DIR, modules: tuple[str, ...] = HOT_MODULES) -> Path:
    """Compile `modules` into `native_dir`; returns the manifest's path."""
    scratch = native_dir.with_name(native_dir.name + ".work")
    shutil.rmtree(scratch, ignore_errors=True)
    digest = source_digest()  # of the sources as copied: an edit during the build makes it stale
    shutil.copytree(PACKAGE_DIR, scratch / "src" / "pets", ignore=shutil.ignore_patterns("__pycache__"))
    paths = [f"src/{module.replace('.', '/')}.py" for module in modules]
    (scratch / "setup.py").write_text(SETUP.format(paths=paths, group=GROUP))
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    (scratch / "mypy.ini").write_text(MYPY_CONFIG.format(python=python))
    subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace", "--parallel", str(os.cpu_count() or 1)],
        cwd=scratch,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    files = {module: f"src/{module.replace('.', '/')}{EXTENSION_SUFFIX}" for module in modules}
    files[f"{GROUP}__mypyc"] = f"src/{GROUP}__mypyc{EXTENSION_SUFFIX}"
    for file in files.values():
        if not (scratch / file).is_file():
            raise FileNotFoundError(f"mypyc did not produce {scratch / file}")
    shutil.rmtree(scratch / "build")  # C sources and objects
    for source in (scratch / "src").rglob("*.py"):  # the copy compiled: only the extensions stay
        source.unlink()
    shutil.rmtree(native_dir, ignore_errors=True)
    scratch.rename(native_dir)
    manifest = {"extension_suffix": EXTENSION_SUFFIX, "sources": digest, "modules": files}
    (native_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return native_dir / MANIFEST


def main() -> int:
    why = missing_toolchain()
    if why is not None:
        print(f"pets: compiled hot path not built: {why}; PETS runs pure Python (slower).", file=sys.stderr)
        return 0
    if up_to_date():
        return 0
    started = time.perf_counter()
    manifest = build()
    seconds = time.perf_counter() - started
    print(f"pets: compiled {len(HOT_MODULES)} hot-path modules in {seconds:.0f} s ({manifest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
