"""Benchmark of `prepare` on a synthetic Places205-format archive: images/s and peak memory.

    python -m pipeline.bench.prepare                       # 2,000 and 20,000 images, 32 px
    python -m pipeline.bench.prepare --images 2000 50000 --size 64

For each size it writes imagesPlaces205_resize.tar.gz and trainvalsplit_places205.tar.gz in the
official layout into a temporary folder (256x256 JPEGs with photo-like content, ~10 kB each, as
in the real archive), then runs the real `prepare` on them in a fresh process, sampling that
process's memory every 20 ms: RssAnon (heap, stacks, decoded images: what streaming must bound)
and the whole resident set. If memory is bounded, the peaks do not grow with the image count.
Prints a table and writes reports/benchmarks/prepare-<machine>.json.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from pipeline.core.atomic import write_json
from pipeline.core.hardware import cpu_name

DISTINCT = 256  # distinct JPEGs, repeated under other names: decoding cost is what matters, not variety
CLASSES = 205


def photo_like_jpegs(n: int, seed: int = 0) -> list[bytes]:
    """256x256 JPEGs of smooth random colour fields with noise: sizes and decode cost close to photos'."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        coarse = rng.uniform(0, 255, (8, 8, 3)).astype(np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((256, 256), Image.BICUBIC), dtype=np.float32)
        pixels = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=75)
        out.append(buffer.getvalue())
    return out


def write_archives(folder: Path, n_images: int) -> int:
    """The two official Places205 archives with n_images train images (and 1 val image per class)."""
    from pipeline.data.sources.places205 import IMAGE_PREFIX, IMAGES, LIST_FILES, LISTS

    jpegs = photo_like_jpegs(DISTINCT)
    lines = {"train": [], "test": []}
    size = 0
    with tarfile.open(folder / IMAGES, "w:gz", compresslevel=1) as tar:
        for split, count in (("train", n_images), ("test", CLASSES)):
            for i in range(count):
                label = i % CLASSES
                key = f"x/class{label:03d}/gsun_{split}{i:09d}.jpg"
                data = jpegs[i % DISTINCT]
                info = tarfile.TarInfo(IMAGE_PREFIX + key)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                lines[split].append(f"{key} {label}")
                size += len(data)
    with tarfile.open(folder / LISTS, "w:gz") as tar:
        for split, member in LIST_FILES.items():
            data = ("\n".join(lines[split]) + "\n").encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return size


def _memory_kb(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {key: int(value) for key, value in re.findall(r"^(RssAnon|VmRSS):\s+(\d+) kB", text, re.M)}


def measure(n_images: int, image_size: int, scratch: Path) -> dict:
    """Write the archives, then time `prepare` in a child process while sampling its memory."""
    folder = scratch / f"n{n_images}"
    mirror = folder / "mirror"
    mirror.mkdir(parents=True)
    jpeg_bytes = write_archives(mirror, n_images)
    code = ("import sys; from pathlib import Path; from pipeline.config.subsets import SubsetSpec; "
            "from pipeline.data.prepare import prepare; f = Path(sys.argv[1]); "
            "prepare('places205', f / 'raw', f / 'out', int(sys.argv[2]), SubsetSpec(0, 0), f / 'mirror', f / 'work')")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code, str(folder), str(image_size)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks = {"RssAnon": 0, "VmRSS": 0}
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(child.stdout), daemon=True)
    reader.start()
    while child.poll() is None:
        for key, value in _memory_kb(child.pid).items():
            peaks[key] = max(peaks[key], value)
        time.sleep(0.02)
    reader.join()
    wall = time.perf_counter() - started
    if child.returncode:
        raise SystemExit(f"prepare failed on {n_images} images:\n{''.join(output)[-3000:]}")
    # The conversion's own time, as prepare logs it: without interpreter start-up and the md5 checks.
    convert_s = float(re.findall(r"done: .* in ([\d.]+) s;", "".join(output))[0])
    total = n_images + CLASSES
    return {"images": total, "image_size": image_size, "jpeg_mb": round(jpeg_bytes / 2**20, 1),
            "process_s": round(wall, 2), "convert_s": convert_s, "images_per_s": round(total / convert_s),
            "peak_rss_anon_mb": round(peaks["RssAnon"] / 1024, 1), "peak_rss_mb": round(peaks["VmRSS"] / 1024, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2000, 20000], help="train images per run")
    parser.add_argument("--size", type=int, default=32, help="prepared image size in px")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    args = parser.parse_args(argv)
    machine = f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as scratch:
        for n in args.images:
            print(f"preparing {n:,} synthetic Places205 images at {args.size} px ...", flush=True)
            rows.append(measure(n, args.size, Path(scratch)))
    print(f"\nprepare on synthetic Places205-format archives, {machine}")
    print(f"{'images':>9} {'JPEG MB':>8} {'convert s':>10} {'img/s':>7} {'process s':>10} {'peak RssAnon MB':>16} "
          f"{'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['images']:>9,} {r['jpeg_mb']:>8} {r['convert_s']:>10} {r['images_per_s']:>7,} {r['process_s']:>10} "
              f"{r['peak_rss_anon_mb']:>16} {r['peak_rss_mb']:>12}")
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    out = args.out / f"prepare-{slug}.json"
    write_json(out, {"machine": machine, "command": " ".join(["python -m pipeline.bench.prepare", *sys.argv[1:]]),
                     "date": time.strftime("%Y-%m-%d"), "runs": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
