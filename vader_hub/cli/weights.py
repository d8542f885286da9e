"""vader-hub weights: list, download, verify, clean, export and publish weights.

    vader-hub weights list [--json]
    vader-hub weights download vader_r50_fpn.<tag> [...] | --all
    vader-hub weights verify [NAME ...]
    vader-hub weights clean [NAME ...] [--dry-run]
    vader-hub weights export runs/smoke/checkpoint.pt --out export/ [--tag T] [--manifest my_manifest.json]
    vader-hub weights publish export/ --repo-id my-org/vader-r18-fpn [--manifest my_manifest.json] [--dry-run]
"""
import argparse
import json
import sys
from pathlib import Path
from typing import List

from ..models import hub_config, model_for_state_dict
from ..weights.cache import cached_path, list_cached_files, list_locks, lock_path, partial_path, remove_cached
from ..weights.errors import ChecksumMismatchError
from ..weights.export import DEFAULT_LICENSE, export_weights
from ..weights.hf import evict
from ..weights.manifest import Manifest, WeightsEntry, read_manifests, read_readable_manifests, write_entry
from ..weights.publish import prepare_publish, publish
from ..weights.resolve import ResolveOptions, cached_copies, resolve_entry
from ..weights.safefs import Removal, describe_os_error
from ..weights.verify import read_verified
from .inputs import read_weights_input
from .options import add_architecture_argument, add_output_argument
from .status import DONE, DONE_IN_PART, reporting_errors_of

reporting_errors = reporting_errors_of("vader-hub weights")


def _entries(manifest: Manifest, names: List[str]) -> List[WeightsEntry]:
    if not names:
        return list(manifest.entries)
    entries = []
    for name in names:
        entry = manifest.find_name(name)
        if entry is None:
            known = ", ".join(e.name for e in manifest.entries) or "none"
            raise ValueError(f"no manifest entry named {name!r}; known: {known}")
        entries.append(entry)
    return entries


def _human(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


@reporting_errors
def run_list(args: argparse.Namespace) -> int:
    manifest = read_readable_manifests()
    for problem in manifest.problems:
        print(f"vader-hub weights: a manifest was left out: {problem}", file=sys.stderr)
    options = ResolveOptions.from_env()
    rows = [{"name": e.name, "size": e.size, "sha256": e.sha256, "license": e.license,
             "cached": [str(p) for p in cached_copies(e, options)]} for e in manifest.entries]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"No published weights in {', '.join(map(str, manifest.paths)) or 'any manifest'}. Train and "
              "export your own (`python -m vader_hub.train`, `vader-hub weights export`), then add the entry "
              "to a VADER_HUB_MANIFEST file.")
    else:
        print(f"{'NAME':40} {'SIZE':>10}  {'LICENSE':16} CACHED (not verified; see `verify`)")
        for row in rows:
            print(f"{row['name']:40} {_human(row['size']):>10}  {row['license']:16} "
                  f"{row['cached'][0] if row['cached'] else '-'}")
    return DONE_IN_PART if manifest.problems else DONE


@reporting_errors
def run_download(args: argparse.Namespace) -> int:
    manifest = read_manifests()
    if not args.names and not args.all:
        raise ValueError("name the weights to download (see `vader-hub weights list`) or pass --all")
    for entry in _entries(manifest, [] if args.all else args.names):
        weights = resolve_entry(entry)
        print(f"{entry.name}: {weights.path} (sha256 verified)")
    return DONE


@reporting_errors
def run_verify(args: argparse.Namespace) -> int:
    corrupt = 0
    for entry in _entries(read_manifests(), args.names):
        copies = cached_copies(entry)
        if not copies:
            print(f"{entry.name}: not cached")
        for path in copies:
            try:
                read_verified(path, entry.sha256, entry.size)
                print(f"{entry.name}: OK {path}")
            except ChecksumMismatchError as error:
                corrupt += 1
                print(f"{entry.name}: CORRUPT {error} (the next load removes and fetches it again)")
    return DONE_IN_PART if corrupt else DONE


def _clean_targets(args: argparse.Namespace, options: ResolveOptions) -> List[Path]:
    root = options.cache_dir
    if args.names:
        entries = _entries(read_manifests(), args.names)
        own = [p for e in entries for p in (cached_path(e, root), partial_path(cached_path(e, root)),
                                            lock_path(e, root))]
        return own + [p for e in entries for p in cached_copies(e, options) if p not in own]
    own = list_cached_files(root) + list_locks(root)
    hub = [p for e in read_manifests().entries for p in cached_copies(e, options) if p not in own]
    return own + hub


def _removals(path: Path, options: ResolveOptions, dry_run: bool) -> List[Removal]:
    """What cleaning ``path`` removes: a vader-hub cache entry, or a Hub file's pointer and blob."""
    if path.is_relative_to(options.cache_dir):
        removal = remove_cached(path, options.cache_dir, dry_run=dry_run)
        return [] if removal is None else [removal]
    return evict(path, dry_run=dry_run)


@reporting_errors
def run_clean(args: argparse.Namespace) -> int:
    options = ResolveOptions.from_env()
    removed, kept = {}, 0
    for path in _clean_targets(args, options):
        try:
            removals = _removals(path, options, args.dry_run)
        except OSError as error:  # a folder where a file belongs, a read-only cache: left as it is
            kept += 1
            print(f"vader-hub weights: left {describe_os_error(error)}", file=sys.stderr)
            continue
        for removal in removals:
            if removal.path not in removed:  # a link standing for several entries is removed once
                removed[removal.path] = removal
                print(f"{'would remove' if args.dry_run else 'removed'} {removal.describe()}")
    freed = sum(removal.size for removal in removed.values())
    print(f"{'would free' if args.dry_run else 'freed'} {_human(freed)}")
    return DONE_IN_PART if kept else DONE


def _json_file(path: Path, what: str) -> dict:
    if path is None:
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: {what} must be a JSON object")
    return data


@reporting_errors
def run_export(args: argparse.Namespace) -> int:
    source = read_weights_input(args.input)
    architecture = args.model or source.architecture
    if not architecture:
        raise ValueError(f"{args.input} does not record its architecture; pass --model (e.g. vader_r18_fpn)")
    if args.model and source.architecture and args.model != source.architecture:
        raise ValueError(f"{args.input} is for {source.architecture}, not --model {args.model}")
    model = model_for_state_dict(architecture, source.state_dict, str(args.input))
    provenance = {**source.provenance, **_json_file(args.provenance, "provenance")}
    result = export_weights(source.state_dict, architecture, args.out, tag=args.tag, provenance=provenance,
                            license=args.license, metrics=_json_file(args.metrics, "metrics"), half=args.half,
                            config=hub_config(model))
    if args.manifest:
        write_entry(args.manifest, result.entry)
        print(f"added {result.entry.name} to {args.manifest}")
    print(f"exported {result.entry.name} to {args.out}: {result.weights.name} ({result.size} bytes, sha256 "
          f"{result.sha256}), config.json, README.md, manifest_entry.json")
    return DONE


@reporting_errors
def run_publish(args: argparse.Namespace) -> int:
    plan = prepare_publish(args.export_dir, args.repo_id)
    if args.dry_run:
        for path in plan.files:
            print(f"would upload {path} ({path.stat().st_size} bytes) to {args.repo_id}")
        print(f"{plan.entry.name}: sha256 {plan.entry.sha256} verified; nothing uploaded (--dry-run)")
        return DONE
    result = publish(args.export_dir, args.repo_id, manifest=args.manifest, endpoint=args.endpoint,
                     private=args.private)
    where = f" and {args.manifest}" if args.manifest else ""
    print(f"published {result.entry.name} to {args.repo_id} at commit {result.commit}; pinned in "
          f"{plan.export_dir / 'manifest_entry.json'}{where}")
    return DONE


def _add_commands(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("list", help="models, tags and whether they are cached")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=run_list)
    download = commands.add_parser("download", help="fetch and verify weights into the cache")
    download.add_argument("names", nargs="*", metavar="NAME", help="architecture.tag, as in `list`")
    download.add_argument("--all", action="store_true", help="every manifest entry")
    download.set_defaults(func=run_download)
    verify = commands.add_parser("verify", help="re-hash cached copies against the manifest")
    verify.add_argument("names", nargs="*", metavar="NAME", help="default: every entry")
    verify.set_defaults(func=run_verify)
    clean = commands.add_parser("clean", help="remove cached weights, partial downloads and locks")
    clean.add_argument("names", nargs="*", metavar="NAME", help="default: the whole cache")
    clean.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    clean.set_defaults(func=run_clean)


def _add_export_publish(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="a state dict or trainer checkpoint -> safetensors, config, card")
    export.add_argument("input", type=Path, help=".safetensors, .pt state dict, or trainer checkpoint")
    add_output_argument(export, "the folder to write", metavar="DIR")
    add_architecture_argument(export, help="the architecture, e.g. vader_r18_fpn (default: what the file records)")
    export.add_argument("--tag", default="", help="the pretrained tag: architecture.tag in timm")
    export.add_argument("--license", default=DEFAULT_LICENSE, help="the weights' licence (mind the data's terms)")
    export.add_argument("--provenance", type=Path, help="a JSON file with config, data, steps, code_version")
    export.add_argument("--metrics", type=Path, help="a JSON file of metric name -> value")
    export.add_argument("--manifest", type=Path, help="add or update the entry in this manifest file")
    export.add_argument("--half", action="store_true",
                        help="store floating-point tensors as float16 (half the size; loaded back as float32)")
    export.set_defaults(func=run_export)
    publish_ = commands.add_parser("publish", help="upload an export to the Hugging Face Hub, pin the commit")
    publish_.add_argument("export_dir", type=Path, help="a folder written by `export`")
    publish_.add_argument("--repo-id", required=True, help="namespace/name of the model repo")
    publish_.add_argument("--endpoint", help="the Hub endpoint (default: huggingface_hub's)")
    publish_.add_argument("--manifest", type=Path, help="add or update the published entry in this manifest")
    publish_.add_argument("--private", action="store_true", help="create the repo as private")
    publish_.add_argument("--dry-run", action="store_true", help="check and list the files; upload nothing")
    publish_.set_defaults(func=run_publish)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``weights`` and its actions to the ``vader-hub`` parser."""
    parser = subparsers.add_parser("weights", help="list, download, verify, clean, export, publish weights",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    _add_commands(commands)
    _add_export_publish(commands)
