"""llama.cpp's HF converter, taken from the llama-cpp-python source distribution on PyPI.

The sdist of the installed llama-cpp-python version vendors the llama.cpp tree it was built
from, so the converter and gguf-py match the llama.cpp that quantizes and runs the files.
Nothing of it is kept in this repository: it is downloaded with pip into a cache folder (pytest's
cache, `.pytest_cache/d/bitllm-llama-cpp-<version>`) once, and only the converter's files are
extracted. Set BITLLM_LLAMA_CPP_SDIST to a local sdist to skip the download (offline machines).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DISTRIBUTION = "llama-cpp-python"
# what the converter needs from the vendored llama.cpp tree
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/gguf/")


def installed_version() -> str:
    import llama_cpp

    return llama_cpp.__version__


def _download_sdist(version: str, into: Path) -> Path:
    local = os.environ.get("BITLLM_LLAMA_CPP_SDIST")
    if local:
        return Path(local)
    command = [sys.executable, "-m", "pip", "download", f"{DISTRIBUTION}=={version}"]
    command += ["--no-deps", "--no-binary", ":all:", "--quiet", "-d", str(into)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    found = sorted(into.glob("llama_cpp_python-*.tar.gz"))
    if result.returncode != 0 or not found:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"pip could not download the {DISTRIBUTION} {version} sdist: {last}")
    return found[0]


def _extract_converter(sdist: Path, into: Path) -> None:
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/", 3)  # llama_cpp_python-V / vendor / llama.cpp / rest
            if len(parts) < 4 or parts[1:3] != ["vendor", "llama.cpp"]:
                continue
            inside = parts[3]
            if not inside.startswith(CONVERTER_PARTS) or ".." in inside.split("/"):
                continue
            if not (member.isfile() or member.isdir()):
                continue
            member.name = inside
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                archive.extract(member, into, filter="data")
            else:
                archive.extract(member, into)


def converter_tree(cache: Path) -> Path:
    """Folder holding convert_hf_to_gguf.py, conversion/ and gguf-py/ of the installed
    llama-cpp-python's llama.cpp; made once, atomically (parallel sessions never see half)."""
    version = installed_version()
    folder = cache / f"llama.cpp-{version}"
    if (folder / "convert_hf_to_gguf.py").is_file():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="llama.cpp-", dir=cache))
    try:
        _extract_converter(_download_sdist(version, building), building / "tree")
        (building / "tree").rename(folder)
    except OSError:
        if not (folder / "convert_hf_to_gguf.py").is_file():
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder


def convert_checkpoint(tree: Path, checkpoint: Path, out: Path, outtype: str) -> Path:
    """Runs llama.cpp's convert_hf_to_gguf.py on a HF folder (it puts its own gguf-py first on
    the path, unless NO_LOCAL_GGUF is set, which is removed here)."""
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    command = [sys.executable, str(tree / "convert_hf_to_gguf.py"), str(checkpoint)]
    command += ["--outtype", outtype, "--outfile", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not out.is_file():
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"convert_hf_to_gguf.py failed on {checkpoint}:\n{tail}")
    return out
