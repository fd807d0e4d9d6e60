"""Command line: ``person-cluster run|add|remove|people|name|cluster|evaluate|sweep|review|export``. Parsing and messages only; the work is in :mod:`person_cluster.api`."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sqlite3
import sys
import time
from typing import NoReturn

from . import __version__

log = logging.getLogger("person_cluster")

_SET_HELP = "override a config value, e.g. --set clustering.distance_threshold=0.5 (repeatable)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="person-cluster",
        description="Find the people in videos and photo collections and group their faces into folders.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="extract faces from videos/photos and cluster them into OUT",
                         description="Sample frames, detect faces, embed, cluster, and write people folders.")
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, image files or folders (recursive)")
    run.add_argument("-o", "--out", required=True, help="output folder")
    run.add_argument("--overwrite", action="store_true", help="replace a previous run in OUT")

    ad = sub.add_parser("add", help="add videos/photos to the people of an earlier run in OUT",
                        description="Extract only the new inputs, with OUT's own extraction settings, and cluster them "
                                    "against OUT's people: people keep their numbers and names, a new face joins a "
                                    "named person only when it is clearly theirs.")
    ad.add_argument("out", metavar="OUT", help="output folder of an earlier run")
    ad.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, image files or folders (recursive)")

    rm = sub.add_parser("remove", help="take inputs (or every input under a folder) out of OUT",
                        description="Removes the inputs' faces, crops, frames and labels; every decision about other "
                                    "faces stays.")
    rm.add_argument("out", metavar="OUT", help="output folder of an earlier run")
    rm.add_argument("sources", nargs="+", metavar="SOURCE", help="an input as OUT's manifest lists it, or a folder")

    pp = sub.add_parser("people", help="list OUT's people: folder, name, faces, screen time, videos, first seen",
                        description="The people of OUT as the cast ranks them, with the names given so far.")
    pp.add_argument("out", metavar="OUT", help="output folder of an earlier run")
    pp.add_argument("--json", action="store_true", help="one JSON list")

    nm = sub.add_parser("name", help="name a person of OUT (as the review page does)",
                        description="PERSON is a number's folder (person_003) or a current name; the decision is saved "
                                    "in OUT/review.sqlite and the person's folder renamed at once.")
    nm.add_argument("out", metavar="OUT", help="output folder of an earlier run")
    nm.add_argument("person", metavar="PERSON", help="person_003, or the person's current name")
    nm.add_argument("name", metavar="NAME", help="the new name")

    cl = sub.add_parser("cluster", help="re-cluster OUT from its cached features (inputs are not read again)",
                        description="Re-cluster from OUT/features.sqlite with new clustering/fusion settings.")
    cl.add_argument("out", metavar="OUT", help="output folder of an earlier run")

    ev = sub.add_parser("evaluate", help="score OUT's clusters against ground-truth identities",
                        description="NMI, ARI, pairwise and BCubed precision/recall/F, purity, coverage and "
                                    "detection recall of OUT's clusters.")
    ev.add_argument("out", metavar="OUT", help="output folder of an earlier run")
    ev.add_argument("--truth", required=True, metavar="folders|FILE.csv",
                    help="'folders' (identity = a photo's parent folder) or a CSV source,frame,left,top,right,bottom,identity")
    ev.add_argument("--json", action="store_true", help="print the metrics as one JSON object")

    sw = sub.add_parser("sweep", help="re-cluster OUT over a grid of settings and score each against ground truth",
                        description="Grid search over fusion/tracking/clustering/post-processing settings, from the cache only; "
                                    "writes OUT/sweeps/<grid>.csv and .png.")
    sw.add_argument("out", metavar="OUT", help="output folder of an earlier run")
    sw.add_argument("--grid", required=True, metavar="GRID.yaml", help="grid file (examples in configs/)")
    sw.add_argument("--truth", metavar="folders|FILE.csv", help="overrides the grid file's truth")

    rv = sub.add_parser("review", help="a local page to name, merge, split and correct OUT's people",
                        description="Serves a review page on 127.0.0.1 until Ctrl-C; decisions are saved in "
                                    "OUT/review.sqlite at once and applied by `person-cluster cluster OUT`.")
    rv.add_argument("out", metavar="OUT", help="output folder of an earlier run")
    rv.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    rv.add_argument("--open", action="store_true", help="open the page in the default browser")

    ex = sub.add_parser("export", help="write OUT's people as a training set into DEST",
                        description="folders: one folder of face crops per person (ImageFolder); yolo: images/, "
                                    "labels/ and data.yaml (Ultralytics); csv: one row per face.")
    ex.add_argument("out", metavar="OUT", help="output folder of an earlier run")
    ex.add_argument("dest", metavar="DEST", help="a new or empty folder")
    ex.add_argument("--format", required=True, choices=("folders", "yolo", "csv"))
    ex.add_argument("--named-only", action="store_true", help="only the people named in `review`")

    for sp in (run, cl):
        sp.add_argument("-c", "--config", help="YAML config file (defaults: configs/default.yaml values)")
    for sp in (run, cl, ad):
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=_SET_HELP)
    for sp in (run, cl, ev, sw, rv, ex, ad, rm, pp, nm):
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
        sp.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _quiet_native_logs() -> None:
    """FFmpeg's and OpenCV's own log lines ("moov atom not found", "can't capture by name") would interleave with
    our one-line messages; every unreadable video is reported by us. PyAV keeps FFmpeg quiet by default; OpenCV's
    FFmpeg backend (PySceneDetect's, in scene mode) reads the variable when it first starts. Process-wide
    settings, so the command line makes them, not the library."""
    import os

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    _quiet_native_logs()

    from . import api
    from .config import load_config
    from .errors import PersonClusterError

    started = time.perf_counter()
    try:
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "export":
            return _export(args)
        if args.command == "review":
            return _review(args)
        if args.command in ("add", "remove", "people", "name"):
            return _library(args, started)
        if args.command == "run":
            config = load_config(args.config, args.set)
            manifest = api.run(args.inputs, args.out, config, overwrite=args.overwrite, progress=not args.quiet)
        else:
            config = load_config(args.config) if args.config else None
            manifest = api.recluster(args.out, args.set, config)
    except PersonClusterError as exc:
        print(f"person-cluster: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # disk full, read-only OUT, ...: the cache keeps what was committed
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"person-cluster: error: {getattr(exc, 'strerror', None) or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("person-cluster: interrupted; finished frames are kept in the cache, re-run to resume", file=sys.stderr)
        return 130
    s = manifest["summary"]
    if s["faces"] == 0:
        print(f"no faces found in {s['frames']} sampled frames; wrote empty outputs to {args.out}")
    else:
        print(
            f"{s['faces']} faces in {s['frames']} frames -> {s['clusters']} people, {s['unassigned']} unassigned; "
            f"{s['skipped_inputs']} inputs skipped; wrote {args.out} in {time.perf_counter() - started:.1f} s"
        )
    return 0


def _library(args: argparse.Namespace, started: float) -> int:
    from . import library

    if args.command == "people":
        rows = library.people(args.out)
        if args.json:
            print(json.dumps(rows, ensure_ascii=False))
            return 0
        print(f"{'person':11s} {'name':24s} {'faces':>6s} {'screen s':>9s}  videos, first seen")
        for r in rows:
            seen = f"{r['first_source']}" + (f" at {r['first_time_s']:.1f} s" if r["first_time_s"] is not None else "")
            print(f"{r['person']:11s} {(r['name'] or '-')[:24]:24s} {r['faces']:6d} {r['screen_time_s'] or 0:9.1f}  "
                  f"{len(r['videos'])}, {seen}")
        return 0
    if args.command == "name":
        row = library.name(args.out, args.person, args.name)
        print(f"{row['person']} is now {row['name']!r} ({row['faces']} faces, folder people/{row['folder']})")
        return 0
    if args.command == "remove":
        manifest, removed = library.remove(args.out, args.sources)
        print(f"removed {len(removed)} inputs; {manifest['summary']['faces']} faces, {manifest['summary']['clusters']} "
              f"people left in {args.out}")
        return 0
    manifest, s = library.add(args.out, args.inputs, args.set, progress=not args.quiet)
    joined = ", ".join(f"{k} +{v}" for k, v in sorted(s.joined.items())) or "nobody"
    print(f"added {len(s.added)} inputs ({s.faces} faces): joined {joined}; {s.new_people} new people; "
          f"{len(s.already)} already in OUT (not decoded again), {len(s.skipped)} skipped; "
          f"{manifest['summary']['clusters']} people in {args.out} ({time.perf_counter() - started:.1f} s)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_out

    scores = evaluate_out(args.out, args.truth)
    if args.json:
        print(json.dumps(scores))
        return 0
    for key, value in scores.items():
        print(f"{key:20s} {value:.4f}" if isinstance(value, float) else f"{key:20s} {value}")
    return 0


def _review(args: argparse.Namespace) -> int:
    from .review.server import make_server

    server, _ = make_server(args.out, args.port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"review page: {url}  (Ctrl-C to stop; then `person-cluster cluster {args.out}` applies the decisions)",
          flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export

    s = export(args.out, args.dest, args.format, args.named_only)
    print(f"exported {s['people']} people, {s['faces']} faces as {s['format']} into {args.dest} ({s['files']} files)")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .evaluation.sweep import best_rows, sweep_out

    rows, csv_path, png_path = sweep_out(args.out, args.grid, args.truth)
    axes = [k for k in rows[0] if "." in k]
    print(f"{len(rows)} settings; wrote {csv_path} and {png_path}")
    for metric, row in best_rows(rows).items():
        setting = ", ".join(f"{k}={row[k]}" for k in axes)
        print(f"best {metric:10s} {row[metric]:.4f}  {setting}")
    return 0


def console() -> NoReturn:
    """The ``person-cluster`` command: :func:`main`, then exit. Everything is written and closed by then; the
    interpreter's final garbage collection over the objects of every imported library only costs time (0.7 s of a
    5.9-s run on the Norton clip when torch was imported), so the objects left are frozen out of it."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
